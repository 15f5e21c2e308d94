"""The public API for store and plugin authors: the one module a plugin imports.

Everything a store needs lives here, and only what is here is promised to stay stable across
minor releases (``autoconfig-cache>=0.2,<0.3``); the other modules of the package are internal.

A store is a :class:`StoreBase` subclass with a ``cache_key`` and ``@hookimpl`` on each store
hook, built by a :data:`StoreFactory` registered under URL schemes; see
``docs/plugin-authors.md`` for a complete minimal store. Options are declared with
:func:`option` fields and parsed with :func:`parse_options`; Relay-style environment settings
with :class:`EnvironmentStore` (the ``autoconfig_cache_environment_store`` hook)::

    from autoconfig_cache.plugin import RegisterStore, StoreBase, StoreSpec, hookimpl

    class MyStore(StoreBase):
        @hookimpl
        async def cache_get_all(self) -> list[StoredRecord]:
            return await self._track(self._get_all())
        ...

    @hookimpl
    def autoconfig_cache_register_stores(register: RegisterStore) -> None:
        register(["mystore"], MyStore.from_spec, description="my backend")
"""

from __future__ import annotations

from .environment import EnvironmentStore, Setting, SettingsReader, StoreConfig, settings_table
from .errors import (
    ConfigurationError,
    PartialWriteError,
    PluginContractError,
    RefusedRecord,
    StoreClosedError,
    StoreError,
    StoreSchemaError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from .gcpause import gc_paused
from .hookspecs import RegisterStore, Store, StoreFactory, hookimpl
from .options import option, options_table, parse_options
from .records import StoredRecord
from .secrets import mask, redact_url
from .store_spec import StoreSpec, parse_flag
from .storebase import MAX_STORED_VERSION, StoreBase, foreign_record, is_damaged_version

__all__ = [
    "MAX_STORED_VERSION",
    "ConfigurationError",
    "EnvironmentStore",
    "PartialWriteError",
    "PluginContractError",
    "RefusedRecord",
    "RegisterStore",
    "Setting",
    "SettingsReader",
    "Store",
    "StoreBase",
    "StoreClosedError",
    "StoreConfig",
    "StoreError",
    "StoreFactory",
    "StoreSchemaError",
    "StoreSpec",
    "StoreTimeoutError",
    "StoreUnavailableError",
    "StoredRecord",
    "foreign_record",
    "gc_paused",
    "hookimpl",
    "is_damaged_version",
    "mask",
    "option",
    "options_table",
    "parse_flag",
    "parse_options",
    "redact_url",
    "settings_table",
]
