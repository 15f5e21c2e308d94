"""Built-in sqlite store (stub, filled in by the core issue)."""

from __future__ import annotations

from autoconfig_cache.hookspecs import RegisterStore, hookimpl


@hookimpl
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Registers nothing yet."""
