"""Fixtures for the Redis store tests: real servers on free loopback ports.

Servers shared by the whole session (plain, TLS-only, 3-node cluster, sentinel) are started on
first use and killed at the end; every test works under its own cache key, so tests cannot see
each other's data. Fault tests start a private server they may kill, stop and restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.records import StoredRecord
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_redis import RedisStore
from tests.netfixtures import CertificateFiles, make_ca
from tests.redis.servers import RedisClusterProcesses, RedisServer, SentinelProcesses
from tests.secret_values import known_secret

#: The password of :func:`password_server`.
PASSWORD = known_secret("s3cret-passw0rd")

StoreMaker = Callable[..., RedisStore]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A plain redis-server shared by the session."""
    server = RedisServer(tmp_path_factory.mktemp("redis-plain"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    """A throw-away CA and server certificate."""
    return make_ca(tmp_path_factory.mktemp("redis-tls-certs"))


@pytest.fixture(scope="session")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: CertificateFiles
) -> Iterator[RedisServer]:
    """A TLS-only redis-server (``--port 0 --tls-port P``) shared by the session."""
    server = RedisServer(tmp_path_factory.mktemp("redis-tls"), tls=tls_files)
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A 3-primary Redis Cluster shared by the session."""
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    yield cluster
    cluster.kill()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelProcesses]:
    """A primary and one sentinel monitoring it, shared by the session."""
    processes = SentinelProcesses(tmp_path_factory.mktemp("redis-sentinel"))
    processes.start()
    yield processes
    processes.kill()


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, which it may kill, stop and restart."""
    server = RedisServer(tmp_path / "private-redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def cache_key() -> str:
    """A cache key no other test uses."""
    return f"autoconfig-test-{uuid.uuid4().hex}"


def open_store(url: str, cache_key: str, **options: str) -> RedisStore:
    """A store built through its registered factory, as the core builds it."""
    return RedisStore.from_spec(StoreSpec(url, cache_key, options))


@pytest.fixture
def make_store(cache_key: str) -> Iterator[StoreMaker]:
    """Open stores on this test's cache key; the test closes them (closing twice is harmless)."""

    def make(url: str, key: str | None = None, **options: str) -> RedisStore:
        return open_store(url, key or cache_key, **options)

    yield make


def lose_every_optimistic_set_all(
    store: RedisStore, other: RedisStore, intruder: Callable[[str, int], StoredRecord]
) -> list[str]:
    """Make every optimistic ("diff") ``set_all`` attempt of ``store`` lose its race: before each
    one, ``other`` upserts a new record built by ``intruder``, so that ``store`` has to fall back
    to its server-side full mode. Returns the list the modes of the set_all script are appended
    to, in the order they run."""
    script = store._script(store._get_client(), "set_all")
    modes: list[str] = []

    async def always_racing_script(*, keys: Any, args: Any) -> Any:
        modes.append(args[0])
        if args[0] == "diff":
            await other.cache_upsert(intruder(f"env:intruder-{len(modes)}", 1))
        return await script(keys=keys, args=args)

    store._scripts["set_all"] = always_racing_script
    return modes


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own that requires :data:`PASSWORD`."""
    server = RedisServer(tmp_path / "auth", password=PASSWORD)
    server.start()
    yield server
    server.kill()
