"""The relay format's two key derivations (HKDF for v9 and later v8 Relay Proxies, SHA-256 for
earlier v8), the ``auto`` choice, the setting, the CLI reports, and the key material."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from autoconfig_cache import AutoConfigCache, Environment, KeyRing, Snapshot, StorageFormat
from autoconfig_cache.codec import KeyDerivation
from autoconfig_cache.config import Config
from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.stores.memory import MemoryStore
from tests.secret_values import known_secret

from .cli.conftest import run_cli
from .items import env_json

KEY = known_secret("relay derivation test key")


def relay_aes_key(material: bytes, derivation: str) -> bytes:
    """Written from ld-relay internal/autoconfigcache/crypto.go, not from our codec."""
    if derivation == "sha256":
        return hashlib.sha256(material).digest()
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"ld-relay autoconfig cache"
    ).derive(material)


def relay_record(env_id: str, derivation: str, *, material: bytes = KEY.encode()) -> StoredRecord:
    """An environment as a Relay Proxy writes it (model 2, no extension, store version 0)."""
    envelope = {"kind": "environment", "modelVersion": 2, "data": env_json(env_id)}
    nonce = os.urandom(12)
    blob = nonce + AESGCM(relay_aes_key(material, derivation)).encrypt(
        nonce, json.dumps(envelope).encode(), None
    )
    return StoredRecord(f"env:{env_id}", 0, blob)


def opens_with(blob: bytes, derivation: str, material: bytes = KEY.encode()) -> bool:
    try:
        AESGCM(relay_aes_key(material, derivation)).decrypt(blob[:12], blob[12:], None)
    except InvalidTag:
        return False
    return True


def relay_cache(
    store: object, derivation: KeyDerivation | None = None, key: str = KEY
) -> AutoConfigCache:
    return AutoConfigCache(
        store,
        cache_key="relay-kdf",
        keys=KeyRing.from_strings(key),
        format=StorageFormat.RELAY,
        registry=PluginRegistry(load_entry_points=False),
        relay_key_derivation=derivation,
    )


async def seeded(records: list[StoredRecord]) -> MemoryStore:
    store = MemoryStore(name=None, cache_key="relay-kdf")
    await store.cache_set_all(records=records, rewrite_unchanged=False)
    return store


def one_env(env_id: str, version: int = 1) -> Snapshot:
    return Snapshot(environments={env_id: Environment.from_json(env_json(env_id, version))})


# -- auto --------------------------------------------------------------------------------------


@pytest.mark.parametrize("derivation", ["hkdf", "sha256"])
async def test_auto_writes_after_a_load_with_the_derivation_found(derivation: str) -> None:
    store = await seeded([relay_record("relay-1", derivation), relay_record("relay-2", derivation)])
    async with relay_cache(store) as cache:
        result = await cache.get_all()
        assert set(result.snapshot.environments) == {"relay-1", "relay-2"}
        assert await cache.upsert(Environment.from_json(env_json("ours", 1)))
        ours = {r.field: r for r in await cache.get_records()}["env:ours"]
    assert opens_with(ours.blob, derivation)


async def test_auto_reads_the_store_before_a_first_write_without_a_load() -> None:
    # `cache import`, or an application that writes without loading first.
    store = await seeded([relay_record("relay-1", "sha256")])
    async with relay_cache(store) as cache:
        assert await cache.upsert(Environment.from_json(env_json("ours", 1)))
        ours = {r.field: r for r in await cache.get_records()}["env:ours"]
    assert opens_with(ours.blob, "sha256")


async def test_auto_on_an_empty_store_writes_hkdf() -> None:
    store = await seeded([])
    async with relay_cache(store) as cache:
        await cache.get_all()
        await cache.set_all(one_env("ours"))
        (record,) = await cache.get_records()
    assert opens_with(record.blob, "hkdf") and not opens_with(record.blob, "sha256")


async def test_auto_follows_the_majority_and_rewrites_the_minority_at_the_next_put() -> None:
    store = await seeded(
        [relay_record(f"s{i}", "sha256") for i in range(3)] + [relay_record("h", "hkdf")]
    )
    async with relay_cache(store) as cache:
        result = await cache.get_all()
        await cache.set_all(result.snapshot)
        records = await cache.get_records()
    assert len(records) == 4
    assert all(opens_with(r.blob, "sha256") for r in records)


async def test_records_0_1_wrote_are_no_evidence_for_auto() -> None:
    # 0.1 wrote relay records with SHA-256, as model 1 without an extension field: they say
    # nothing about the Relay Proxy sharing the store, so auto picks HKDF and rewrites them.
    envelope = {"kind": "environment", "modelVersion": 1, "data": env_json("old")}
    nonce = os.urandom(12)
    aes = AESGCM(relay_aes_key(KEY.encode(), "sha256"))
    old = StoredRecord(
        "env:old", 2, nonce + aes.encrypt(nonce, json.dumps(envelope).encode(), None)
    )
    store = await seeded([old])
    async with relay_cache(store) as cache:
        result = await cache.get_all()
        assert set(result.snapshot.environments) == {"old"}
        await cache.set_all(result.snapshot)
        (record,) = await cache.get_records()
    assert opens_with(record.blob, "hkdf")


@pytest.mark.parametrize("configured", list(KeyDerivation))
async def test_an_explicit_derivation_is_written_and_the_other_one_rewritten(
    configured: KeyDerivation,
) -> None:
    other = "sha256" if configured is KeyDerivation.HKDF else "hkdf"
    store = await seeded([relay_record("theirs", other)])
    async with relay_cache(store, configured) as cache:
        result = await cache.get_all()
        assert set(result.snapshot.environments) == {"theirs"}  # read under either
        await cache.set_all(result.snapshot)
        (record,) = await cache.get_records()
    assert opens_with(record.blob, str(configured)) and not opens_with(record.blob, other)


def test_inspect_records_reports_each_derivation() -> None:
    async def inspect() -> list[Any]:
        store = await seeded([relay_record("h", "hkdf"), relay_record("s", "sha256")])
        async with relay_cache(store) as cache:
            return cache.inspect_records(await cache.get_records())

    derivations = {e.record.field: e.key_derivation for e in asyncio.run(inspect())}
    assert derivations == {"env:h": KeyDerivation.HKDF, "env:s": KeyDerivation.SHA256}


# -- the setting --------------------------------------------------------------------------------


def load_config(**environ: str) -> Config:
    return Config.load(
        environ={"AUTO_CONFIG_CACHE_STORE": "memory://", "AUTO_CONFIG_CACHE_KEY": "k", **environ}
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("auto", None), ("HKDF", KeyDerivation.HKDF), (" sha256 ", KeyDerivation.SHA256)],
)
def test_the_setting_is_parsed(value: str, expected: KeyDerivation | None) -> None:
    config = load_config(
        AUTO_CONFIG_CACHE_FORMAT="relay",
        AUTO_CONFIG_CACHE_ENCRYPTION_KEY=KEY,
        AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION=value,
    )
    assert config.relay_key_derivation is expected
    assert config.describe()["relayKeyDerivation"] == str(expected or "auto")
    assert config.open_cache().codec.relay_write_derivation is (expected or KeyDerivation.HKDF)


def test_the_default_is_auto() -> None:
    config = load_config(AUTO_CONFIG_CACHE_FORMAT="relay", AUTO_CONFIG_CACHE_ENCRYPTION_KEY=KEY)
    assert config.relay_key_derivation is None
    assert config.describe()["relayKeyDerivation"] == "auto"


def test_a_bad_value_names_the_setting_and_the_choices() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION="md5")
    message = str(caught.value)
    assert "AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION" in message
    assert all(choice in message for choice in ("'auto'", "'hkdf'", "'sha256'", "'md5'"))


def test_the_setting_with_the_v2_format_is_ignored_with_a_warning() -> None:
    config = load_config(
        AUTO_CONFIG_CACHE_ENCRYPTION_KEY=KEY, AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION="sha256"
    )
    assert any("AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION ignored" in w for w in config.warnings)


def test_the_setting_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[cache]\nformat = "relay"\nrelay_key_derivation = "sha256"\n')
    config = Config.load(config_file=path, environ={})
    assert config.relay_key_derivation is KeyDerivation.SHA256


# -- key material --------------------------------------------------------------------------------


async def write_one(config: Config) -> bytes:
    async with config.open_cache() as cache:
        await cache.set_all(one_env("e"))
        (record,) = await cache.get_records()
    return record.blob


async def test_the_autoconfig_key_as_key_material_is_not_trimmed() -> None:
    autoconfig_key = " rel-0123456789abcdef\n"
    config = load_config(
        AUTO_CONFIG_CACHE_STORE="memory://material-untrimmed",
        AUTO_CONFIG_CACHE_FORMAT="relay",
        AUTO_CONFIG_KEY=autoconfig_key,
    )
    blob = await write_one(config)
    assert opens_with(blob, "hkdf", autoconfig_key.encode())
    assert not opens_with(blob, "hkdf", autoconfig_key.strip().encode())


async def test_the_explicit_encryption_key_is_trimmed() -> None:
    config = load_config(
        AUTO_CONFIG_CACHE_STORE="memory://material-trimmed",
        AUTO_CONFIG_CACHE_FORMAT="relay",
        AUTO_CONFIG_KEY=" rel-0123456789abcdef ",
        AUTO_CONFIG_CACHE_ENCRYPTION_KEY=f"  {KEY}\t",
    )
    assert opens_with(await write_one(config), "hkdf", KEY.encode())


async def test_data_0_1_wrote_under_the_trimmed_autoconfig_key_still_loads() -> None:
    # 0.1 trimmed the AutoConfig key: what it wrote under the trimmed form still decrypts (as a
    # previous key), and is re-encrypted under the key as given at the next write.
    autoconfig_key = "rel-0123456789abcdef\n"
    store_url = "memory://material-0-1"
    async with AutoConfigCache.open(
        store_url, cache_key="k", encryption_key=autoconfig_key.strip(), format="v2"
    ) as old:
        await old.set_all(one_env("e"))
    config = load_config(AUTO_CONFIG_CACHE_STORE=store_url, AUTO_CONFIG_KEY=autoconfig_key)
    async with config.open_cache() as cache:
        result = await cache.get_all()
        assert set(result.snapshot.environments) == {"e"}
        assert result.report.stale_key_fields == ("env:e",)


# -- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def mixed_store(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """An SQLite store holding one HKDF and one SHA-256 Relay record, and its CLI settings."""
    url = f"sqlite://{tmp_path / 'relay.db'}"

    async def seed() -> None:
        async with AutoConfigCache.open(
            url, cache_key="test", encryption_key=KEY, format="relay"
        ) as cache:
            await cache.hook.cache_set_all(
                records=[relay_record("h", "hkdf"), relay_record("s", "sha256")],
                rewrite_unchanged=False,
            )

    asyncio.run(seed())

    def env(**extra: str) -> dict[str, str]:
        return {
            "AUTO_CONFIG_CACHE_STORE": url,
            "AUTO_CONFIG_CACHE_KEY": "test",
            "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
            "AUTO_CONFIG_CACHE_FORMAT": "relay",
            **extra,
        }

    return env


def test_cli_inspect_json_shows_each_records_derivation(
    mixed_store: Callable[..., dict[str, str]],
) -> None:
    done = run_cli(["cache", "inspect", "--json"], mixed_store())
    assert done.returncode == 0, done.stderr
    rows = {row["field"]: row for row in json.loads(done.stdout)["records"]}
    assert rows["env:h"]["keyDerivation"] == "hkdf"
    assert rows["env:s"]["keyDerivation"] == "sha256"
    assert KEY not in done.stdout


def test_cli_inspect_table_shows_each_records_derivation(
    mixed_store: Callable[..., dict[str, str]],
) -> None:
    done = run_cli(["cache", "inspect", "--wide"], mixed_store())  # --wide: the derivation
    assert done.returncode == 0, done.stderr
    assert "derivation" in done.stdout
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in done.stdout.splitlines()
        if line.startswith("│")
    ]
    derivation_by_id = {row[1]: row[7] for row in rows}
    assert derivation_by_id == {"h": "hkdf", "s": "sha256"}


def test_cli_verify_warns_about_a_mixed_store_and_still_exits_0(
    mixed_store: Callable[..., dict[str, str]],
) -> None:
    done = run_cli(["cache", "verify"], mixed_store())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" in done.stdout and "both relay key derivations" in done.stdout
    assert "AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION" in done.stdout

    done = run_cli(["cache", "verify", "--json"], mixed_store())
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert report["mixedKeyDerivations"] is True
    assert report["relayKeyDerivations"] == {"hkdf": 1, "sha256": 1}


def test_cli_verify_says_nothing_of_derivations_for_a_single_one(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'one.db'}"

    async def seed() -> None:
        async with AutoConfigCache.open(
            url, cache_key="test", encryption_key=KEY, format="relay"
        ) as cache:
            await cache.hook.cache_set_all(
                records=[relay_record("h", "hkdf")], rewrite_unchanged=False
            )

    asyncio.run(seed())
    env = {
        "AUTO_CONFIG_CACHE_STORE": url,
        "AUTO_CONFIG_CACHE_KEY": "test",
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
        "AUTO_CONFIG_CACHE_FORMAT": "relay",
    }
    done = run_cli(["cache", "verify"], env)
    assert done.returncode == 0 and "derivations" not in done.stdout
    assert (
        json.loads(run_cli(["cache", "verify", "--json"], env).stdout)["mixedKeyDerivations"]
        is False
    )
