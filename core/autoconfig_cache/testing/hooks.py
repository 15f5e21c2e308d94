"""Call a store's hooks exactly as the core does: through pluggy, keyword arguments only."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import pluggy

from autoconfig_cache import hookspecs
from autoconfig_cache.records import StoredRecord


class StoreHooks:
    """A store plugin object registered into a plugin manager of its own, with typed calls.

    Registering validates the store's hook implementations against the specifications (names
    and argument names), as the core does; a mismatch raises
    :class:`pluggy.PluginValidationError`.

    :param store: the store plugin object.
    """

    def __init__(self, store: object) -> None:
        self.store = store
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(store)

    def implements(self, hook_name: str) -> bool:
        """True if the store implements ``hook_name`` (e.g. ``cache_create_storage``)."""
        caller = getattr(self.pm.hook, hook_name)
        return bool(caller.get_hookimpls())

    async def _await(self, hook_name: str, result: object) -> Any:
        if result is None:
            raise AssertionError(
                f"{self.store!r} does not implement {hook_name} (the hook returned None)"
            )
        if not inspect.isawaitable(result):
            raise AssertionError(
                f"{hook_name} of {self.store!r} returned {result!r}, not an awaitable: "
                "store hooks must be async def"
            )
        awaitable: Awaitable[Any] = result
        return await awaitable

    async def get_all(self) -> list[StoredRecord]:
        """``cache_get_all``, checking that it returns a list of :class:`StoredRecord`."""
        records = await self._await("cache_get_all", self.pm.hook.cache_get_all())
        assert isinstance(records, list), f"cache_get_all returned {type(records).__name__}"
        for record in records:
            assert isinstance(record, StoredRecord), f"cache_get_all returned {record!r}"
            assert type(record.version) is int, f"version of {record.field!r} is not an int"
            assert type(record.blob) is bytes, f"blob of {record.field!r} is not bytes"
        return records

    async def get_versions(self) -> dict[str, int]:
        """``cache_get_versions`` (optional: see :meth:`implements`), checking that it returns a
        mapping of text fields to integer versions."""
        versions = await self._await("cache_get_versions", self.pm.hook.cache_get_versions())
        assert isinstance(versions, Mapping), f"cache_get_versions returned {versions!r}"
        for field, version in versions.items():
            assert isinstance(field, str), f"cache_get_versions returned field {field!r}"
            assert type(version) is int, f"version of {field!r} is not an int: {version!r}"
        return dict(versions)

    async def set_all(
        self, records: Sequence[StoredRecord], *, rewrite_unchanged: bool = False
    ) -> None:
        """``cache_set_all``."""
        result = await self._await(
            "cache_set_all",
            self.pm.hook.cache_set_all(records=records, rewrite_unchanged=rewrite_unchanged),
        )
        assert result is None, f"cache_set_all returned {result!r}, expected None"

    async def upsert(self, record: StoredRecord) -> bool:
        """``cache_upsert``, checking that it returns a bool."""
        written = await self._await("cache_upsert", self.pm.hook.cache_upsert(record=record))
        assert isinstance(written, bool), f"cache_upsert returned {written!r}, expected a bool"
        return written

    async def delete(self, field: str, version: int) -> bool:
        """``cache_delete``, checking that it returns a bool."""
        deleted = await self._await(
            "cache_delete", self.pm.hook.cache_delete(field=field, version=version)
        )
        assert isinstance(deleted, bool), f"cache_delete returned {deleted!r}, expected a bool"
        return deleted

    async def clear(self) -> None:
        """``cache_clear``."""
        await self._await("cache_clear", self.pm.hook.cache_clear())

    async def create_storage(self) -> bool:
        """``cache_create_storage``; ``False`` if the store does not implement it."""
        result = self.pm.hook.cache_create_storage()
        if result is None:
            return False
        await self._await("cache_create_storage", result)
        return True

    async def close(self) -> None:
        """``cache_close``."""
        await self._await("cache_close", self.pm.hook.cache_close())
