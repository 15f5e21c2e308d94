"""Entry point of the Redis/Valkey store plugin: registers the store factory for its schemes."""

from __future__ import annotations

from autoconfig_cache.hookspecs import RegisterStore, hookimpl
from autoconfig_cache.store_spec import StoreSpec

from .settings import SCHEMES


def open_store(spec: StoreSpec) -> object:
    """Build a :class:`~autoconfig_cache_redis.store.RedisStore` for ``spec``.

    redis-py is imported here, not at discovery: every process discovers every installed
    plugin, and one that uses another store should not pay for importing this one's client.
    """
    from .store import RedisStore

    return RedisStore.from_spec(spec)


@hookimpl
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Register the Redis store for redis, rediss, valkey, valkeys and their +cluster and
    +sentinel forms."""
    register(
        sorted(SCHEMES),
        open_store,
        description="Redis/Valkey hash per cache key (Relay Proxy compatible); "
        "standalone, TLS, Cluster and Sentinel",
    )
