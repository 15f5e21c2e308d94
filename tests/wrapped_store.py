"""A store that hands every call to a real store it wraps: tests subclass it to change one hook
(a read that answers late, or never) and keep the real store's behaviour for the rest."""

from __future__ import annotations

from collections.abc import Sequence

from autoconfig_cache.plugin import Store, StoreBase, StoredRecord, hookimpl


class WrappedStore(StoreBase):
    """Every hook goes to ``inner``; subclasses override what they change."""

    store_name = "wrapped store"

    def __init__(self, inner: Store) -> None:
        self.cache_key = inner.cache_key
        self._inner = inner

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        return await self._inner.cache_get_all()

    @hookimpl
    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        await self._inner.cache_set_all(records, rewrite_unchanged)

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        return await self._inner.cache_upsert(record)

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        return await self._inner.cache_delete(field, version)

    @hookimpl
    async def cache_clear(self) -> None:
        await self._inner.cache_clear()

    async def _release(self) -> None:
        await self._inner.cache_close()
