"""Interop between this project's ``relay`` format and the Relay Proxy, for any shared store.

The Relay Proxy side is :mod:`tests.relay_dialects` (written from ld-relay's source, see its
docstring for the files and facts), in its three dialects: v8 with SHA-256 keys, v8 with HKDF
keys, v9. :class:`RelayInteropSuite` holds the tests; a store's test module subclasses it and
supplies two fixtures on one real server and one cache key:

- ``store_settings``: the environment variables that select the store and the cache key, as an
  operator sets them (``USE_REDIS`` ..., ``AUTO_CONFIG_CACHE_KEY``);
- ``relay_backend``: a :class:`~tests.relay_dialects.RelayBackend` on the same store and key.

Our side is driven as users drive it: the library opened from those settings
(:meth:`Config.open_cache`), and the ``autoconfig-cache`` command line in a subprocess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache import AutoConfigCache, Environment, Filter, ItemKind, LoadResult, Snapshot
from autoconfig_cache.config import Config
from tests.cli.conftest import run_cli
from tests.relay_dialects import (
    DIALECTS,
    V8_HKDF,
    V8_SHA256,
    V9,
    Dialect,
    RelayBackend,
    RelayLoad,
    RelayProxy,
    concurrent_environment,
    secrets_in,
)
from tests.secret_values import known_secret

#: Surrounding spaces on purpose: both sides trim the explicit encryption key.
ENCRYPTION_KEY = known_secret("  relay-shared-encryption-key-7c1e  ")
NEW_ENCRYPTION_KEY = known_secret("relay-rotated-encryption-key-93ad")

dialects = pytest.mark.parametrize("dialect", DIALECTS, ids=str)


def stream_put_data() -> dict[str, Any]:
    """Put data as the stream sends it: three environments with concurrent keys, one without
    (an older payload), two filters."""
    environments = {f"env-{i}": concurrent_environment(f"env-{i}", version=i + 1) for i in range(3)}
    plain = concurrent_environment("env-plain", version=4)
    del plain["sdkKeys"], plain["mobileKeys"], plain["sdkKey"]["expiring"]
    environments["env-plain"] = plain
    filters = {
        "flt-1": {"projKey": "proj", "key": "f-1", "version": 1},
        "flt-2": {"projKey": "proj", "key": "f-2", "version": 3},
    }
    return {"environments": environments, "filters": filters}


def settings(
    store_settings: Mapping[str, str],
    derivation: str,
    *,
    key: str = ENCRYPTION_KEY,
    previous: str | None = None,
) -> dict[str, str]:
    """Our settings for sharing the store with a Relay: format, key, key derivation."""
    env = {
        **store_settings,
        "AUTO_CONFIG_CACHE_FORMAT": "relay",
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": key,
        "AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION": derivation,
    }
    if previous is not None:
        env["AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS"] = previous
    return env


def open_cache(env: Mapping[str, str]) -> AutoConfigCache:
    """The cache as ``run`` and the CLI open it from these settings."""
    return Config.load(environ=dict(env)).open_cache()


def assert_cache_reads_exactly(
    result: LoadResult, environments: Mapping[str, Any], filters: Mapping[str, Any]
) -> None:
    """Our cache read every record (nothing skipped) and exactly these items."""
    assert result.report.skipped == ()
    snapshot = result.snapshot
    assert {env_id: env.to_json() for env_id, env in snapshot.environments.items()} == environments
    assert {filter_id: flt.to_json() for filter_id, flt in snapshot.filters.items()} == filters


def assert_relay_loads_exactly(
    load: RelayLoad,
    dialect: Dialect,
    environments: Mapping[str, Any],
    filters: Mapping[str, Any],
) -> None:
    """The Relay loads exactly these items (filters only if it has them), logging nothing."""
    assert load.warnings == [], f"{dialect} logged about our records: {load.warnings}"
    assert load.environments == dict(environments), (
        f"{dialect} loaded {load.versions()}, expected environments "
        f"{ {k: v['version'] for k, v in environments.items()} }"
    )
    assert load.filters == (dict(filters) if dialect.filters else {}), (
        f"{dialect} loaded {load.versions()}"
    )


def assert_no_secret(put_data: Mapping[str, Any], **outputs: str) -> None:
    """No credential of ``put_data`` appears in any of ``outputs`` (named for the message)."""
    for secret in secrets_in(put_data):
        for name, text in outputs.items():
            assert secret not in text, f"a credential ending in {secret[-4:]} is in clear in {name}"


class RelayInteropSuite:
    """The interop tests; subclass in a store's test module with ``store_settings`` and
    ``relay_backend`` fixtures."""

    @pytest.fixture
    def store_settings(self) -> dict[str, str]:
        raise NotImplementedError("the store's test module provides store_settings")

    @pytest.fixture
    def relay_backend(self) -> RelayBackend:
        raise NotImplementedError("the store's test module provides relay_backend")

    # -- Relay writes, we read ------------------------------------------------------------------

    @dialects
    async def test_relay_written_items_load_through_get_all(
        self, dialect: Dialect, store_settings: dict[str, str], relay_backend: RelayBackend
    ) -> None:
        relay = RelayProxy(dialect, relay_backend, encryption_key=ENCRYPTION_KEY)
        expected = relay.write_put(stream_put_data())
        # Then the stream's patches and deletes, as the Relay persists them.
        expected["environments"]["env-0"] = relay.upsert_environment(
            concurrent_environment("env-0", version=8)
        )
        relay.delete("environment", "env-1")
        del expected["environments"]["env-1"]
        if dialect.filters:
            relay.delete("filter", "flt-1")
            del expected["filters"]["flt-1"]
        assert_relay_loads_exactly(relay.load(), dialect, **expected)

        async with open_cache(settings(store_settings, dialect.derivation)) as cache:
            result = await cache.get_all()
        assert_cache_reads_exactly(result, expected["environments"], expected["filters"])

    @dialects
    async def test_every_credential_a_relay_wrote_is_read(
        self, dialect: Dialect, store_settings: dict[str, str], relay_backend: RelayBackend
    ) -> None:
        # v9 writes the sdkKeys / mobileKeys arrays; v8 writes none, and writes the expiring key
        # under SDKKeyRep's Go field name "Expiring" (no JSON tag), which Go reads back whatever
        # the case. Either way the accepted keys are the same: the anchor, the expiring key with
        # its expiry, the mobile key.
        relay = RelayProxy(dialect, relay_backend, encryption_key=ENCRYPTION_KEY)
        data = concurrent_environment("env-exp", version=2)
        relay.write_put({"environments": {"env-exp": data}, "filters": {}})
        async with open_cache(settings(store_settings, dialect.derivation)) as cache:
            result = await cache.get_all()
        assert result.report.skipped == ()
        env = result.snapshot.environments["env-exp"]
        old = data["sdkKey"]["expiring"]
        expiring = env.expiring_sdk_key
        assert expiring is not None, f"the expiring SDK key written by {dialect} was not read"
        assert (expiring.value, expiring.timestamp) == (old["value"], old["timestamp"])
        assert [(key.value, key.expiry) for key in env.sdk_keys] == [
            (data["sdkKey"]["value"], None),
            (old["value"], old["timestamp"]),
        ]
        assert [key.value for key in env.mobile_keys] == [data["mobKey"]]

    # -- we write, the Relay reads -------------------------------------------------------------

    @dialects
    async def test_what_we_write_loads_whole_in_the_relay_after_patches_and_deletes(
        self, dialect: Dialect, store_settings: dict[str, str], relay_backend: RelayBackend
    ) -> None:
        data = stream_put_data()
        snapshot, problems = Snapshot.from_put_data(data)
        assert problems == []
        environments, filters = dict(data["environments"]), dict(data["filters"])
        async with open_cache(settings(store_settings, dialect.derivation)) as cache:
            await cache.set_all(snapshot)
            environments["env-0"] = concurrent_environment("env-0", version=5)
            environments["env-9"] = concurrent_environment("env-9", version=1)
            filters["flt-1"] = {"projKey": "proj", "key": "f-1", "version": 2}
            assert await cache.upsert(Environment.from_json(environments["env-0"]))
            assert await cache.upsert(Environment.from_json(environments["env-9"]))
            assert await cache.upsert(Filter.from_json(filters["flt-1"], filter_id="flt-1"))
            assert await cache.delete(ItemKind.ENVIRONMENT, "env-1", 3)
            assert await cache.delete(ItemKind.FILTER, "flt-2", 4)
            del environments["env-1"], filters["flt-2"]

            relay = RelayProxy(dialect, relay_backend, encryption_key=ENCRYPTION_KEY)
            assert_relay_loads_exactly(relay.load(), dialect, environments, filters)

            # The deletes still protect our own instances: a lagging writer's older version of
            # a deleted item is refused, and the Relay still sees nothing of it.
            late = concurrent_environment("env-1", version=2)
            assert not await cache.upsert(Environment.from_json(late))
            assert_relay_loads_exactly(relay.load(), dialect, environments, filters)
            result = await cache.get_all()
        assert_cache_reads_exactly(result, environments, filters)

    @dialects
    async def test_a_relay_put_over_our_deletes_loads_exactly_the_relay_items(
        self, dialect: Dialect, store_settings: dict[str, str], relay_backend: RelayBackend
    ) -> None:
        snapshot, _ = Snapshot.from_put_data(stream_put_data())
        async with open_cache(settings(store_settings, dialect.derivation)) as cache:
            await cache.set_all(snapshot)
            assert await cache.delete(ItemKind.ENVIRONMENT, "env-0", 2)
            assert await cache.delete(ItemKind.FILTER, "flt-1", 2)
            relay = RelayProxy(dialect, relay_backend, encryption_key=ENCRYPTION_KEY)
            replacement = {
                "environments": {
                    "env-r1": concurrent_environment("env-r1", version=3),
                    "env-r2": concurrent_environment("env-r2", version=1),
                },
                "filters": {"flt-r": {"projKey": "proj", "key": "f-r", "version": 1}},
            }
            expected = relay.write_put(replacement)
            assert_relay_loads_exactly(relay.load(), dialect, **expected)
            result = await cache.get_all()
        assert_cache_reads_exactly(result, expected["environments"], expected["filters"])

    @dialects
    async def test_auto_derivation_writes_with_the_derivation_of_the_relay_records(
        self, dialect: Dialect, store_settings: dict[str, str], relay_backend: RelayBackend
    ) -> None:
        relay = RelayProxy(dialect, relay_backend, encryption_key=ENCRYPTION_KEY)
        expected = relay.write_put(stream_put_data())
        async with open_cache(settings(store_settings, "auto")) as cache:
            result = await cache.get_all()
            assert result.report.skipped == ()
            ours = concurrent_environment("env-2", version=7)
            assert await cache.upsert(Environment.from_json(ours))
            assert await cache.delete(ItemKind.ENVIRONMENT, "env-0", 2)
        expected["environments"]["env-2"] = ours
        del expected["environments"]["env-0"]
        assert_relay_loads_exactly(relay.load(), dialect, **expected)

    async def test_auto_derivation_on_an_empty_cache_key_writes_hkdf(
        self, store_settings: dict[str, str], relay_backend: RelayBackend
    ) -> None:
        data = stream_put_data()
        snapshot, _ = Snapshot.from_put_data(data)
        async with open_cache(settings(store_settings, "auto")) as cache:
            await cache.set_all(snapshot)
        for dialect in (V8_HKDF, V9):
            relay = RelayProxy(dialect, relay_backend, encryption_key=ENCRYPTION_KEY)
            assert_relay_loads_exactly(relay.load(), dialect, **data)
        # And not SHA-256: an earlier v8 Relay cannot decrypt a single record.
        sha_load = RelayProxy(V8_SHA256, relay_backend, encryption_key=ENCRYPTION_KEY).load()
        assert sha_load.environments == {} and sha_load.filters == {}
        assert len(sha_load.warnings) == len(snapshot)
        assert all("failed to decrypt" in warning for warning in sha_load.warnings)

    # -- through the command line --------------------------------------------------------------

    @dialects
    def test_cache_export_reads_what_the_relay_wrote_and_masks_every_key(
        self,
        dialect: Dialect,
        store_settings: dict[str, str],
        relay_backend: RelayBackend,
        tmp_path: Path,
    ) -> None:
        data = stream_put_data()
        relay = RelayProxy(dialect, relay_backend, encryption_key=ENCRYPTION_KEY)
        expected = relay.write_put(data)
        env = settings(store_settings, dialect.derivation)

        target = tmp_path / "export.json"
        full = run_cli(["cache", "export", "--include-secrets", "-o", str(target)], env)
        assert full.returncode == 0, full.stderr
        assert "skipped" not in full.stderr
        assert json.loads(target.read_text()) == expected

        masked = run_cli(["cache", "export"], env)
        assert masked.returncode == 0, masked.stderr
        exported = json.loads(masked.stdout)
        assert set(exported["environments"]) == set(expected["environments"])
        inspected = run_cli(["cache", "inspect", "--json"], env)
        assert inspected.returncode == 0, inspected.stderr
        records = json.loads(inspected.stdout)["records"]
        assert [r["field"] for r in records if r["problem"] is not None] == []
        assert_no_secret(
            data,
            export_stdout=full.stdout,
            export_stderr=full.stderr,
            masked_export_stdout=masked.stdout,
            masked_export_stderr=masked.stderr,
            inspect_stdout=inspected.stdout,
            inspect_stderr=inspected.stderr,
        )

    @dialects
    async def test_rotate_key_rewrites_everything_the_relay_then_loads_with_the_new_key(
        self, dialect: Dialect, store_settings: dict[str, str], relay_backend: RelayBackend
    ) -> None:
        data = stream_put_data()
        snapshot, _ = Snapshot.from_put_data(data)
        async with open_cache(settings(store_settings, dialect.derivation)) as cache:
            await cache.set_all(snapshot)
            assert await cache.delete(ItemKind.ENVIRONMENT, "env-2", 4)
            assert await cache.delete(ItemKind.FILTER, "flt-2", 4)
        live_envs = {k: v for k, v in data["environments"].items() if k != "env-2"}
        live_filters = {k: v for k, v in data["filters"].items() if k != "flt-2"}

        rotated = run_cli(
            ["cache", "rotate-key"],
            settings(
                store_settings,
                dialect.derivation,
                key=NEW_ENCRYPTION_KEY,
                previous=ENCRYPTION_KEY.strip(),
            ),
        )
        assert rotated.returncode == 0, rotated.stderr
        assert_no_secret(data, rotate_stdout=rotated.stdout, rotate_stderr=rotated.stderr)
        for secret in (ENCRYPTION_KEY.strip(), NEW_ENCRYPTION_KEY):
            assert secret not in rotated.stdout + rotated.stderr

        relay = RelayProxy(dialect, relay_backend, encryption_key=NEW_ENCRYPTION_KEY)
        assert_relay_loads_exactly(relay.load(), dialect, live_envs, live_filters)
        # Nothing is left under the old key: a Relay still on it reads nothing.
        old = RelayProxy(dialect, relay_backend, encryption_key=ENCRYPTION_KEY).load()
        assert old.environments == {} and old.filters == {}
        async with open_cache(
            settings(store_settings, dialect.derivation, key=NEW_ENCRYPTION_KEY)
        ) as cache:
            result = await cache.get_all()
        assert_cache_reads_exactly(result, live_envs, live_filters)
