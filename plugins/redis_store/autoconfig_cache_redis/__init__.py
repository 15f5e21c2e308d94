"""The Redis/Valkey store plugin for autoconfig-cache (distribution ``autoconfig-cache-redis``).

Importing the package imports nothing heavy: the names below load their modules on first use,
so that plugin discovery (which imports every installed plugin's entry point) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoconfig_cache.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .settings import RedisSettings
    from .store import RedisStore

__all__ = ["RedisSettings", "RedisStore"]

_MODULES = {"RedisSettings": "settings", "RedisStore": "store"}


__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
