"""The cache facade and records a store refuses: logged once, counted once, not sent again.

The store is a real memory store with one backend limit added (it cannot hold a blob over a
size, as DynamoDB cannot hold an item over 400 KB), and the real SQLite store.
"""

from __future__ import annotations

import logging
from pathlib import Path

import attrs
import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.errors import PartialWriteError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.records import ItemKind, StoredRecord
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.memory import MemoryStore
from autoconfig_cache.stores.sqlite import SQLiteStore
from tests.items import env_json

#: Blobs over this many bytes are refused by LimitedStore; an item's blob is well under it
#: unless it carries padding.
LIMIT = 20_000
PADDING = "x" * (LIMIT + 1)


class LimitedStore(MemoryStore):
    """A memory store that cannot hold a blob over ``LIMIT`` bytes; it counts upserts."""

    def __init__(self) -> None:
        super().__init__(None, "test")
        self.upserts = 0

    def _refusal(self, record: StoredRecord) -> str | None:
        reason = super()._refusal(record)
        if reason is None and len(record.blob) > LIMIT:
            reason = f"it is {len(record.blob)} bytes, over this store's {LIMIT}-byte limit"
        return reason

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        self.upserts += 1
        return await super().cache_upsert(record)


def make_cache(store: object) -> AutoConfigCache:
    return AutoConfigCache(store, cache_key="test", keys=KeyRing.from_strings("refusals"))


def env(env_id: str, version: int = 1, **extra: object) -> Environment:
    return Environment.from_json(env_json(env_id, version, **extra))


def snapshot(*envs: Environment) -> Snapshot:
    return Snapshot({item.env_id: item for item in envs}, {})


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "the store refused" in r.getMessage()]


async def stored_versions(store: object) -> dict[str, int]:
    load = await make_cache(store).get_all()
    return {env_id: item.version for env_id, item in load.snapshot.environments.items()}


async def test_a_refusal_is_logged_and_counted_once_per_version_and_listed_until_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = LimitedStore()
    cache = make_cache(store)
    caplog.set_level(logging.WARNING, logger="autoconfig_cache")

    for _ in range(3):  # every stream put writes the whole snapshot again
        with pytest.raises(PartialWriteError) as raised:
            await cache.set_all(snapshot(env("e1"), env("big", 1, padding=PADDING)))
        assert raised.value.only_refused
    assert await stored_versions(store) == {"e1": 1}
    assert [entry.field for entry in cache.refusals.current] == ["env:big"]
    assert cache.refusals.total == 1
    [line] = refusal_lines(caplog)
    assert "env:big" in line and f"{LIMIT}-byte limit" in line

    with pytest.raises(PartialWriteError):  # a new version, still too big: a new refusal
        await cache.set_all(snapshot(env("e1"), env("big", 2, padding=PADDING)))
    assert cache.refusals.total == 2 and len(refusal_lines(caplog)) == 2

    await cache.set_all(snapshot(env("e1"), env("big", 3)))  # small again: written
    assert cache.refusals.current == ()
    assert cache.refusals.total == 2
    assert await stored_versions(store) == {"e1": 1, "big": 3}


async def test_an_upsert_refused_at_a_version_is_not_sent_again_at_that_version() -> None:
    store = LimitedStore()
    cache = make_cache(store)
    big = env("big", 1, padding=PADDING)
    with pytest.raises(PartialWriteError):
        await cache.upsert(big)
    assert store.upserts == 1
    assert await cache.upsert(big) is False  # the same record: not sent to the store
    assert store.upserts == 1
    with pytest.raises(PartialWriteError):
        await cache.upsert(env("big", 2, padding=PADDING))
    assert store.upserts == 2
    assert await cache.upsert(env("big", 3)) is True
    assert cache.refusals.current == () and cache.refusals.total == 2


async def test_a_refused_delete_is_reported_like_any_record() -> None:
    store = LimitedStore()
    cache = make_cache(store)
    await cache.upsert(env("e1", 5))
    # A tombstone at a version no store can hold: refused, and the item stays.
    with pytest.raises(PartialWriteError) as raised:
        await cache.delete(ItemKind.ENVIRONMENT, "e1", 2**62)
    [refused] = raised.value.refused
    assert refused.field == "env:e1" and refused.deleted and "version" in refused.reason
    assert await stored_versions(store) == {"e1": 5}


def deeply_nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "unencodable",
    [
        # A version past what the blob header can hold (built directly: from_json refuses it).
        lambda: attrs.evolve(env("e2", 1), version=2**62),
        # Nesting the JSON decoder accepts and the encoder cannot walk (RecursionError).
        lambda: env("e2", 2, nested=deeply_nested(1000)),
    ],
    ids=["version 2**62", "nesting 1000 deep"],
)
async def test_an_item_that_cannot_be_encoded_is_refused_alone_and_its_stored_copy_kept(
    tmp_path: Path, unencodable: object
) -> None:
    store = SQLiteStore.from_spec(StoreSpec(f"sqlite://{tmp_path / 'cache.db'}", "test"))
    cache = make_cache(store)
    await cache.set_all(snapshot(env("e1", 1), env("e2", 1)))
    item = unencodable()  # type: ignore[operator]
    try:
        # Used to raise out of set_all with nothing written: every re-sync failed the same way.
        with pytest.raises(PartialWriteError) as raised:
            await cache.set_all(snapshot(env("e1", 2), item, env("e3", 1)))
        [refused] = raised.value.refused
        assert refused.field == "env:e2"
        assert await stored_versions(store) == {"e1": 2, "e2": 1, "e3": 1}
        with pytest.raises(PartialWriteError):
            await cache.upsert(item)
        assert cache.refusals.total == 1  # the same item at the same version: counted once
    finally:
        await store.cache_close()
