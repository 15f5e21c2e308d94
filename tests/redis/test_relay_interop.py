"""A Relay Proxy (v8 SHA-256, v8 HKDF, v9) and this project share one Redis hash.

The tests are :class:`tests.relay_interop_suite.RelayInteropSuite`; the Relay side is
:mod:`tests.relay_dialects`, which follows ld-relay's ``internal/autoconfigcache/redis_store.go``:
one hash whose key is exactly the cache key, fields ``env:<envID>`` / ``filter:<filterID>``, a
full write as ``MULTI; DEL; HSET; EXEC``, HSET / HDEL for one item.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis.servers import RedisServer
from tests.relay_dialects import RedisRelayBackend
from tests.relay_interop_suite import RelayInteropSuite


class TestRelayInteropRedis(RelayInteropSuite):
    @pytest.fixture
    def store_settings(self, redis_server: RedisServer, cache_key: str) -> dict[str, str]:
        # The Relay Proxy's own variables select the store.
        return {
            "USE_REDIS": "true",
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(redis_server.port),
            "AUTO_CONFIG_CACHE_KEY": cache_key,
        }

    @pytest.fixture
    def relay_backend(
        self, redis_server: RedisServer, cache_key: str
    ) -> Iterator[RedisRelayBackend]:
        with redis_server.client() as client:
            yield RedisRelayBackend(client, cache_key)
