"""The core conformance kit against every way of reaching Redis: plain, TLS-only, a 3-node
cluster and a sentinel-monitored primary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from autoconfig_cache.testing import StoreConformance
from autoconfig_cache_redis import RedisStore
from tests.redis.conftest import open_store
from tests.redis.servers import (
    RedisClusterProcesses,
    RedisServer,
    SentinelProcesses,
)


class RedisConformance(StoreConformance):
    """Shared fixtures: a subclass supplies ``target`` as (URL, options)."""

    concurrent_writers = 8

    @pytest.fixture
    def target(self) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    @pytest.fixture
    async def store(
        self, target: tuple[str, dict[str, str]], cache_key: str
    ) -> AsyncIterator[RedisStore]:
        url, options = target
        store = open_store(url, cache_key, **options)
        yield store
        await store.cache_close()
        cleaner = open_store(url, cache_key, **options)  # keep the shared server small
        try:
            await cleaner.cache_clear()
        finally:
            await cleaner.cache_close()

    @pytest.fixture
    def store_factory(
        self, target: tuple[str, dict[str, str]], cache_key: str
    ) -> Callable[[], RedisStore]:
        url, options = target
        return lambda: open_store(url, cache_key, **options)


class TestPlainRedis(RedisConformance):
    @pytest.fixture
    def target(self, redis_server: RedisServer) -> tuple[str, dict[str, str]]:
        return redis_server.url, {}


class TestTlsOnlyRedis(RedisConformance):
    @pytest.fixture
    def target(self, tls_server: RedisServer) -> tuple[str, dict[str, str]]:
        assert tls_server.tls is not None
        return tls_server.url, {"ca_file": str(tls_server.tls.ca_file)}


class TestRedisCluster(RedisConformance):
    @pytest.fixture
    def target(self, redis_cluster: RedisClusterProcesses) -> tuple[str, dict[str, str]]:
        return redis_cluster.url, {}


class TestRedisSentinel(RedisConformance):
    concurrent_writers = 4

    @pytest.fixture
    def target(self, redis_sentinel: SentinelProcesses) -> tuple[str, dict[str, str]]:
        return redis_sentinel.url, {}
