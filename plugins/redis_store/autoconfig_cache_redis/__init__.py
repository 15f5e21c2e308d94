"""The Redis/Valkey store plugin for autoconfig-cache (distribution ``autoconfig-cache-redis``)."""

from .settings import RedisSettings
from .store import RedisStore

__all__ = ["RedisSettings", "RedisStore"]
