"""autoconfig-cache: a persistent, encrypted, pluggable cache for LaunchDarkly AutoConfig data.

The public API::

    from autoconfig_cache import AutoConfigCache, Snapshot

    async with AutoConfigCache.open(
        "sqlite:///var/lib/autoconfig/cache.db", cache_key="prod", encryption_key=secret
    ) as cache:
        result = await cache.get_all()
"""

from __future__ import annotations

from .cache import AutoConfigCache, InspectedRecord, LoadResult
from .codec import KeyRing, StorageFormat
from .errors import (
    AutoConfigCacheError,
    CodecError,
    ConfigurationError,
    DecryptionError,
    NewerFormatError,
    StoreClosedError,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
    UnknownStoreSchemeError,
)
from .hookspecs import hookimpl
from .models import (
    ConcurrentKey,
    Environment,
    ExpiringKey,
    Filter,
    Item,
    MalformedCredentialsError,
    Snapshot,
    Tombstone,
)
from .records import ItemKind, StoredRecord
from .report import LoadReport, SkippedItem, SkipReason
from .store_spec import StoreSpec

__all__ = [
    "AutoConfigCache",
    "AutoConfigCacheError",
    "CodecError",
    "ConcurrentKey",
    "ConfigurationError",
    "DecryptionError",
    "Environment",
    "ExpiringKey",
    "Filter",
    "InspectedRecord",
    "Item",
    "ItemKind",
    "KeyRing",
    "LoadReport",
    "LoadResult",
    "MalformedCredentialsError",
    "NewerFormatError",
    "SkipReason",
    "SkippedItem",
    "Snapshot",
    "StorageFormat",
    "StoreClosedError",
    "StoreError",
    "StoreSpec",
    "StoreTimeoutError",
    "StoreUnavailableError",
    "StoredRecord",
    "Tombstone",
    "UnknownStoreSchemeError",
    "hookimpl",
]
