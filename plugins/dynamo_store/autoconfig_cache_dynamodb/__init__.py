"""The DynamoDB store plugin for autoconfig-cache (``dynamodb://TABLE?region=...``).

Importing the package imports nothing heavy: the names below load their modules on first use,
so that plugin discovery (which imports every installed plugin's entry point) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoconfig_cache.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .settings import DynamoDBSettings
    from .store import MAX_ITEM_SIZE, DynamoDBStore, item_size

__all__ = ["MAX_ITEM_SIZE", "DynamoDBSettings", "DynamoDBStore", "item_size"]

_MODULES = {
    "MAX_ITEM_SIZE": "store",
    "DynamoDBSettings": "settings",
    "DynamoDBStore": "store",
    "item_size": "store",
}


__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
