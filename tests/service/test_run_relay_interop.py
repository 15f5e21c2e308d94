"""``autoconfig-cache run`` shares a Redis or DynamoDB store with a Relay Proxy (v8 SHA-256, v8
HKDF, v9), as a real process fed by the local stream server.

The Relay Proxy is :mod:`tests.relay_dialects` (written from ld-relay's
``internal/autoconfigcache``; see its docstring). Each test runs the whole story on one cache key:
a Relay wrote the cache and LaunchDarkly is down, so ``run`` starts from the Relay's items; then
LaunchDarkly answers, and the put, patches and deletes that ``run`` persists load whole in the
Relay — exactly the live items, with nothing logged about any record at any moment a Relay reads.
Neither side is given an encryption key, so the AutoConfig key is the key material on both.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.relay_dialects import (
    DIALECTS,
    Dialect,
    DynamoDBRelayBackend,
    RedisRelayBackend,
    RelayBackend,
    RelayLoad,
    RelayProxy,
    concurrent_environment,
    secrets_in,
)
from tests.service.conftest import AUTOCONFIG_KEY, ServiceProcess, StreamServerProcess, wait_for
from tests.services import require_plugin

require_plugin("autoconfig_cache_redis")
require_plugin("autoconfig_cache_dynamodb")
from tests.dynamodb.conftest import TABLE, MotoServer  # sets dummy AWS credentials
from tests.redis.servers import RedisServer

Start = Callable[..., ServiceProcess]


@dataclass
class SharedStore:
    """A real server, with our settings for it and the Relay's view of it."""

    name: str
    settings: Callable[[str], dict[str, str]]
    backend: Callable[[str], RelayBackend]


@pytest.fixture(scope="module")
def interop_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("relay-interop-redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def interop_moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    server.create_table()
    yield server
    server.kill()


@pytest.fixture(params=["redis", "dynamodb"])
def shared_store(request: pytest.FixtureRequest) -> Iterator[SharedStore]:
    if request.param == "redis":
        redis_server: RedisServer = request.getfixturevalue("interop_redis")
        with redis_server.client() as client:
            yield SharedStore(
                "redis",
                lambda key: {
                    "USE_REDIS": "true",
                    "REDIS_HOST": "127.0.0.1",
                    "REDIS_PORT": str(redis_server.port),
                    "AUTO_CONFIG_CACHE_KEY": key,
                },
                lambda key: RedisRelayBackend(client, key),
            )
        return
    moto: MotoServer = request.getfixturevalue("interop_moto")
    yield SharedStore(
        "dynamodb",
        lambda key: {
            "USE_DYNAMODB": "true",
            "DYNAMODB_TABLE": TABLE,
            "DYNAMODB_URL": moto.endpoint,
            "AUTO_CONFIG_CACHE_KEY": key,
        },
        lambda key: DynamoDBRelayBackend(moto.client(), TABLE, key),
    )


def relay_put_data() -> dict[str, Any]:
    """What the Relay had cached before LaunchDarkly went down."""
    return {
        "environments": {
            "relay-env-1": concurrent_environment("relay-env-1", version=4, tag="relay"),
            "relay-env-2": concurrent_environment("relay-env-2", version=1, tag="relay"),
        },
        "filters": {"relay-flt": {"projKey": "proj", "key": "f-relay", "version": 2}},
    }


def stream_put_data() -> dict[str, Any]:
    """What LaunchDarkly sends once it is back."""
    environments = {
        f"env-{i}": concurrent_environment(f"env-{i}", version=i + 1, tag="stream")
        for i in range(4)
    }
    filters = {
        "flt-1": {"projKey": "proj", "key": "f-1", "version": 1},
        "flt-2": {"projKey": "proj", "key": "f-2", "version": 3},
    }
    return {"environments": environments, "filters": filters}


class RelayWatcher:
    """Reads the store as the Relay does, again and again, keeping every warning it ever got."""

    def __init__(self, relay: RelayProxy) -> None:
        self.relay = relay
        self.warnings: list[str] = []
        self.last = RelayLoad()

    def wait_for(
        self, environments: Mapping[str, Any], filters: Mapping[str, Any], what: str
    ) -> RelayLoad:
        expected_filters = dict(filters) if self.relay.dialect.filters else {}

        def matches() -> bool:
            self.last = self.relay.load()
            self.warnings.extend(w for w in self.last.warnings if w not in self.warnings)
            return (
                self.last.environments == dict(environments)
                and self.last.filters == expected_filters
            )

        try:
            wait_for(matches, what)
        except pytest.fail.Exception:
            expected = {k: v["version"] for k, v in environments.items()}
            pytest.fail(
                f"{self.relay.dialect} never loaded {what}: expected environments {expected}, "
                f"last load {self.last.versions()}, warnings {self.warnings}"
            )
        return self.last


def service_settings(
    store: SharedStore, cache_key: str, stream: StreamServerProcess, dialect: Dialect
) -> dict[str, str]:
    """``run``'s settings: the Relay's store variables, the relay format, the Relay's key
    derivation, and no encryption key (the AutoConfig key is the key material)."""
    return {
        **store.settings(cache_key),
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream.uri,
        "AUTO_CONFIG_CACHE_FORMAT": "relay",
        "AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION": dialect.derivation,
    }


@pytest.mark.parametrize("dialect", DIALECTS, ids=str)
def test_run_starts_from_a_relay_cache_and_its_writes_load_whole_in_the_relay(
    dialect: Dialect,
    shared_store: SharedStore,
    services: Start,
    tmp_path: Path,
) -> None:
    cache_key = f"relay-run-{uuid.uuid4().hex}"
    relay = RelayProxy(dialect, shared_store.backend(cache_key), autoconfig_key=AUTOCONFIG_KEY)
    watcher = RelayWatcher(relay)
    from_relay = relay_put_data()
    written = relay.write_put(from_relay)
    from_stream = stream_put_data()
    stream = StreamServerProcess(tmp_path, from_stream)
    try:
        # 1. LaunchDarkly is down: run serves what the Relay cached.
        stream.go_down()
        service = services(service_settings(shared_store, cache_key, stream, dialect))
        service.wait_listening()
        status = service.wait_status(lambda s: s["ready"], "ready from the Relay's cache")
        assert status["source"] == "cache"
        assert {k: v["version"] for k, v in status["environments"].items()} == {
            k: v["version"] for k, v in written["environments"].items()
        }
        assert set(status["filters"]) == set(written["filters"])
        assert status["cache"]["load"]["skipped"] == []

        # 2. LaunchDarkly is back: its put replaces the Relay's items, for the Relay too.
        stream.come_back()
        environments = dict(from_stream["environments"])
        filters = dict(from_stream["filters"])
        watcher.wait_for(environments, filters, "the stream's put")

        # 3. Patches and deletes in the stream.
        environments["env-0"] = concurrent_environment("env-0", version=6, tag="stream")
        environments["env-new"] = concurrent_environment("env-new", version=1, tag="stream")
        filters["flt-1"] = {"projKey": "proj", "key": "f-1", "version": 2}
        for path, data in (
            ("/environments/env-0", environments["env-0"]),
            ("/environments/env-new", environments["env-new"]),
            ("/filters/flt-1", filters["flt-1"]),
        ):
            stream.control("patch", {"path": path, "data": data})
        stream.control("delete", {"path": "/environments/env-1", "version": 3})
        stream.control("delete", {"path": "/filters/flt-2", "version": 4})
        del environments["env-1"], filters["flt-2"]
        final = watcher.wait_for(environments, filters, "the patches and deletes")
        status = service.wait_status(
            lambda s: "env-new" in s["environments"] and "env-1" not in s["environments"],
            "the patches and deletes served",
        )
        assert final.environments == environments
        assert watcher.warnings == [], f"{dialect} logged about our records: {watcher.warnings}"
        assert status["store"]["errorCount"] == 0
        assert service.stop() == 0
    finally:
        stream.stop()

    log = service.log_text()
    shown = json.dumps(status)
    for data in (from_relay, from_stream, {"environments": environments}):
        for secret in secrets_in(data):
            assert secret not in log, f"a credential ending in {secret[-4:]} is in the log"
            assert secret not in shown, f"a credential ending in {secret[-4:]} is in /status"
    assert AUTOCONFIG_KEY not in log
