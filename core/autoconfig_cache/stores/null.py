"""The null store: what a cache uses when no store is configured (caching off).

It answers every operation as an empty store would, so no caller needs ``None`` checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..hookspecs import Store, hookimpl
from ..records import StoredRecord
from ..storebase import StoreBase


class NullStore(StoreBase):
    """Holds nothing, writes nothing (so :attr:`records_written` stays 0), never fails."""

    description = "none (caching off)"
    store_name = "null store"

    def __init__(self, cache_key: str = "") -> None:
        self.cache_key = cache_key

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        """Always empty."""
        return []

    @hookimpl
    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        """Discards the snapshot."""

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        """Discards the record."""
        return False

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        """Nothing to delete."""
        return False

    @hookimpl
    async def cache_clear(self) -> None:
        """Nothing to clear."""


_: type[Store] = NullStore  # mypy checks the class against the Store protocol
