"""The DynamoDB store plugin for autoconfig-cache (``dynamodb://TABLE?region=...``).

Importing the package imports nothing heavy: the names below load their modules on first use,
so that plugin discovery (which imports every installed plugin's entry point) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
