"""The Redis/Valkey store plugin for autoconfig-cache (distribution ``autoconfig-cache-redis``).

Importing the package imports nothing heavy: the names below load their modules on first use,
so that plugin discovery (which imports every installed plugin's entry point) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import RedisSettings
    from .store import RedisStore

__all__ = ["RedisSettings", "RedisStore"]

_MODULES = {"RedisSettings": "settings", "RedisStore": "store"}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
