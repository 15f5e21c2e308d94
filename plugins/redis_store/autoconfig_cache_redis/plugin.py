"""Entry point of the Redis/Valkey store plugin: registers the store factory for its schemes."""

from __future__ import annotations

from autoconfig_cache.hookspecs import RegisterStore, hookimpl

from .settings import SCHEMES
from .store import RedisStore


@hookimpl
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Register :class:`RedisStore` for redis, rediss, valkey, valkeys and their +cluster and
    +sentinel forms."""
    register(
        sorted(SCHEMES),
        RedisStore.from_spec,
        description="Redis/Valkey hash per cache key (Relay Proxy compatible); "
        "standalone, TLS, Cluster and Sentinel",
    )
