"""The async cache facade over a real (memory) store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from autoconfig_cache import (
    AutoConfigCache,
    Environment,
    Filter,
    ItemKind,
    LoadReport,
    Snapshot,
    StorageFormat,
    StoreClosedError,
    StoredRecord,
)
from autoconfig_cache.errors import StoreUnavailableError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.stores.memory import MemoryStore
from tests.secret_values import known_secret

from .items import env_json, filter_json

KEY = known_secret("facade test key")


def snapshot(
    env_versions: dict[str, int], filter_versions: dict[str, int] | None = None
) -> Snapshot:
    return Snapshot(
        environments={i: Environment.from_json(env_json(i, v)) for i, v in env_versions.items()},
        filters={
            i: Filter.from_json(filter_json(v), filter_id=i)
            for i, v in (filter_versions or {}).items()
        },
    )


def cache_on(
    store: object, fmt: StorageFormat = StorageFormat.V2, registry: PluginRegistry | None = None
) -> AutoConfigCache:
    from autoconfig_cache.codec import KeyRing

    return AutoConfigCache(
        store,
        cache_key="facade",
        keys=KeyRing.from_strings(KEY),
        format=fmt,
        registry=registry or PluginRegistry(load_entry_points=False),
        scheme="memory",
    )


@pytest.mark.parametrize("fmt", ["v2", "relay"])
async def test_open_by_url_round_trips_a_snapshot(fmt: str) -> None:
    original = snapshot({"a": 1, "b": 2}, {"f": 3})
    async with AutoConfigCache.open(
        "memory://", cache_key="k", encryption_key=KEY, format=fmt
    ) as cache:
        await cache.set_all(original)
        result = await cache.get_all()
    assert result.snapshot == original
    assert result.snapshot.to_put_data() == original.to_put_data()
    assert result.report.environments == 2 and result.report.filters == 1
    assert result.report.skipped == ()


async def test_v2_load_reports_how_old_the_data_is() -> None:
    async with AutoConfigCache.open("memory://", cache_key="k", encryption_key=KEY) as cache:
        await cache.set_all(snapshot({"a": 1}))
        result = await cache.get_all()
    age = result.report.age_seconds()
    assert age is not None and 0 <= age < 3600


async def test_upsert_is_version_guarded() -> None:
    async with cache_on(MemoryStore()) as cache:
        assert await cache.upsert(Environment.from_json(env_json("a", 5)))
        assert not await cache.upsert(Environment.from_json(env_json("a", 4)))
        assert not await cache.upsert(Environment.from_json(env_json("a", 5)))
        assert await cache.upsert(Environment.from_json(env_json("a", 6)))
        assert (await cache.get_all()).snapshot.environments["a"].version == 6


async def test_delete_leaves_a_tombstone_that_outranks_its_version() -> None:
    async with cache_on(MemoryStore()) as cache:
        await cache.set_all(snapshot({"a": 5, "b": 5}, {"f": 2}))
        assert await cache.delete(ItemKind.ENVIRONMENT, "a", 6)
        assert await cache.delete(ItemKind.FILTER, "f", 3)
        # A deletion at the item's own version (how a put drops an item) supersedes it too.
        assert await cache.delete(ItemKind.ENVIRONMENT, "b", 5)
        loaded = await cache.get_all()
    assert len(loaded.snapshot) == 0
    assert sorted((t.kind, t.item_id, t.version) for t in loaded.snapshot.tombstones) == [
        (ItemKind.ENVIRONMENT, "a", 6),
        (ItemKind.ENVIRONMENT, "b", 5),
        (ItemKind.FILTER, "f", 3),
    ]
    assert loaded.report.tombstones == 3


async def test_delete_does_not_remove_a_newer_item() -> None:
    async with cache_on(MemoryStore()) as cache:
        await cache.upsert(Environment.from_json(env_json("a", 7)))
        assert not await cache.delete(ItemKind.ENVIRONMENT, "a", 6)
        assert (await cache.get_all()).snapshot.environments["a"].version == 7


async def test_tombstone_stops_a_late_older_update_but_not_a_newer_one() -> None:
    async with cache_on(MemoryStore()) as cache:
        await cache.upsert(Environment.from_json(env_json("a", 5)))
        assert await cache.delete(ItemKind.ENVIRONMENT, "a", 6)
        # A lagging writer still applying older patches cannot bring the item back...
        assert not await cache.upsert(Environment.from_json(env_json("a", 5)))
        assert not await cache.upsert(Environment.from_json(env_json("a", 6)))
        assert "a" not in (await cache.get_all()).snapshot.environments
        # ...but a later version is an insert, as the stream's ordering rules say.
        assert await cache.upsert(Environment.from_json(env_json("a", 7)))
        assert (await cache.get_all()).snapshot.environments["a"].version == 7


async def test_delete_of_an_unknown_item_still_records_the_tombstone() -> None:
    async with cache_on(MemoryStore()) as cache:
        assert await cache.delete(ItemKind.FILTER, "never-seen", 4)
        assert not await cache.upsert(Filter.from_json(filter_json(3), filter_id="never-seen"))
        assert (await cache.get_all()).snapshot.filters == {}


async def test_set_all_keeps_the_tombstones_it_is_given_and_drops_the_rest() -> None:
    from autoconfig_cache import Tombstone

    async with cache_on(MemoryStore()) as cache:
        await cache.delete(ItemKind.ENVIRONMENT, "old", 2)
        kept = Tombstone(ItemKind.ENVIRONMENT, "gone", 9)
        await cache.set_all(
            Snapshot(environments=snapshot({"a": 1}).environments, tombstones=(kept,))
        )
        loaded = await cache.get_all()
        assert list(loaded.snapshot.environments) == ["a"]
        assert loaded.snapshot.tombstones == (kept,)
        assert not await cache.upsert(Environment.from_json(env_json("gone", 9)))


async def test_purge_removes_a_tombstone_outright() -> None:
    async with cache_on(MemoryStore()) as cache:
        await cache.delete(ItemKind.ENVIRONMENT, "a", 6)
        assert await cache.purge(ItemKind.ENVIRONMENT, "a", 6)
        assert (await cache.get_all()).snapshot.tombstones == ()
        assert await cache.upsert(Environment.from_json(env_json("a", 1)))


async def test_set_all_replaces_the_previous_snapshot() -> None:
    async with cache_on(MemoryStore()) as cache:
        await cache.set_all(snapshot({"a": 1, "b": 1}))
        await cache.set_all(snapshot({"b": 2, "c": 1}))
        assert sorted((await cache.get_all()).snapshot.environments) == ["b", "c"]


async def test_rotation_rewrites_unchanged_items_under_the_new_key() -> None:
    from autoconfig_cache.codec import KeyRing

    def store() -> MemoryStore:  # store objects sharing one dictionary, as processes share Redis
        return MemoryStore("rotation", "facade")

    async with cache_on(store()) as old_cache:
        await old_cache.set_all(snapshot({"a": 1}))
    rotated = AutoConfigCache(
        store(),
        cache_key="facade",
        keys=KeyRing.from_strings("new key", [KEY]),
        registry=PluginRegistry(load_entry_points=False),
    )
    loaded = await rotated.get_all()
    assert loaded.report.stale_key_fields == ("env:a",)
    await rotated.set_all(loaded.snapshot, rewrite_unchanged=True)
    await rotated.close()
    async with AutoConfigCache(
        store(),
        cache_key="facade",
        keys=KeyRing.from_strings("new key"),
        registry=PluginRegistry(load_entry_points=False),
    ) as new_only:
        result = await new_only.get_all()
    assert list(result.snapshot.environments) == ["a"]
    assert result.report.skipped == ()


async def test_null_cache_holds_nothing_and_never_fails() -> None:
    cache = AutoConfigCache.open(None, cache_key="k", encryption_key=KEY)
    assert cache.is_null
    await cache.set_all(snapshot({"a": 1}))
    assert not await cache.upsert(Environment.from_json(env_json("b")))
    assert len((await cache.get_all()).snapshot) == 0
    await cache.close()


class GatedStore(MemoryStore):
    """A memory store whose reads wait for a gate: lets a test catch an operation in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reads_started = asyncio.Event()

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        self.reads_started.set()
        await self.gate.wait()
        return await super().cache_get_all()


async def test_close_cancels_an_operation_in_flight() -> None:
    store = GatedStore()
    cache = cache_on(store)
    read = asyncio.create_task(cache.get_all())
    await store.reads_started.wait()
    await cache.close()
    with pytest.raises(asyncio.CancelledError):
        await read
    assert read.cancelled()


async def test_use_after_close_raises_a_clear_error_and_close_twice_is_harmless() -> None:
    cache = cache_on(MemoryStore())
    await cache.close()
    await cache.close()
    with pytest.raises(StoreClosedError, match="closed"):
        await cache.get_all()
    with pytest.raises(StoreClosedError):
        await cache.upsert(Environment.from_json(env_json("a")))


class FailingStore(MemoryStore):
    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        raise StoreUnavailableError("store down")


async def test_observers_see_loads_and_write_errors() -> None:
    loads: list[LoadReport] = []
    errors: list[tuple[str, BaseException]] = []

    class Observer:
        @hookimpl
        def autoconfig_cache_on_load(self, report: LoadReport) -> None:
            loads.append(report)

        @hookimpl
        def autoconfig_cache_on_write_error(self, operation: str, error: BaseException) -> None:
            errors.append((operation, error))

    registry = PluginRegistry(load_entry_points=False)
    registry.register(Observer(), name="observer")
    async with cache_on(FailingStore(), registry=registry) as cache:
        await cache.set_all(snapshot({"a": 1}))
        await cache.get_all()
        with pytest.raises(StoreUnavailableError):
            await cache.upsert(Environment.from_json(env_json("a", 2)))
    assert [report.environments for report in loads] == [1]
    assert [(op, type(err)) for op, err in errors] == [("upsert", StoreUnavailableError)]


async def test_wrapper_plugin_can_observe_store_calls() -> None:
    seen: list[int] = []

    class Timing:
        @hookimpl(wrapper=True)
        def cache_get_all(self):  # type: ignore[no-untyped-def]
            coroutine = yield

            async def measured() -> Sequence[StoredRecord]:
                records: Sequence[StoredRecord] = await coroutine
                seen.append(len(records))
                return records

            return measured()

    registry = PluginRegistry(load_entry_points=False)
    registry.register(Timing(), name="timing")
    async with cache_on(MemoryStore(), registry=registry) as cache:
        await cache.set_all(snapshot({"a": 1, "b": 1}))
        await cache.get_all()
    assert seen == [2]


async def test_next_put_repairs_records_that_failed_to_load() -> None:
    store = MemoryStore()
    async with cache_on(store) as cache:
        await cache.set_all(snapshot({"a": 1, "b": 1}))
        records = {record.field: record for record in await store.cache_get_all()}
        damaged = records["env:a"]
        tampered = StoredRecord(
            damaged.field, damaged.version, damaged.blob[:-1] + bytes([damaged.blob[-1] ^ 0xFF])
        )
        await store.cache_set_all(records=[tampered, records["env:b"]], rewrite_unchanged=True)
        loaded = await cache.get_all()
        assert [item.field for item in loaded.report.skipped] == ["env:a"]
        # The stream's next put holds the same versions; the damaged record is rewritten anyway.
        await cache.set_all(snapshot({"a": 1, "b": 1}))
        repaired = await cache.get_all()
    assert repaired.report.skipped == ()
    assert sorted(repaired.snapshot.environments) == ["a", "b"]


async def test_a_plugin_wrapping_only_create_storage_is_registered_into_the_cache(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    class CreateStorageAudit:
        @hookimpl(wrapper=True)
        def cache_create_storage(self):  # type: ignore[no-untyped-def]
            calls.append("create_storage")
            return (yield)

    registry = PluginRegistry(load_entry_points=False)
    registry.register(CreateStorageAudit(), name="audit")
    async with AutoConfigCache.open(
        f"sqlite://{tmp_path / 'cache.db'}",
        cache_key="k",
        encryption_key=KEY,
        registry=registry,
    ) as cache:
        assert await cache.create_storage()
    assert calls == ["create_storage"]
