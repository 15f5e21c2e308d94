"""The SQLite store against records it cannot hold and rows another program wrote.

SQLite binds no column to its declared type, so a row written by something else may hold any
value anywhere. Such a row must be reported and replaced, never crash a read, never fail the
writes of the other records, and never block an item's updates for good.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.errors import PartialWriteError
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.records import StoredRecord, store_version
from autoconfig_cache.report import SkipReason
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.storebase import MAX_STORED_VERSION
from autoconfig_cache.stores.sqlite import SQLiteStore
from autoconfig_cache.testing import as_map, blob_for, record
from tests.items import env_json

CACHE_KEY = "cache-key"
#: The table as the store creates it, minus NOT NULL: another program's table of the same
#: columns passes the store's schema check and may hold NULLs.
LAX_TABLE = """
CREATE TABLE autoconfig_cache (
    cache_key TEXT, field TEXT, version INTEGER, blob BLOB, PRIMARY KEY (cache_key, field)
)
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore.from_spec(StoreSpec(f"sqlite://{path}", CACHE_KEY))
    yield store
    await store.cache_close()


def make_cache(store: SQLiteStore) -> AutoConfigCache:
    return AutoConfigCache(store, cache_key=CACHE_KEY, keys=KeyRing.from_strings("sqlite-hostile"))


def insert_row(path: Path, field: object, version: object, blob: object) -> None:
    """Write one row as another program would, bypassing the store."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO autoconfig_cache VALUES (?, ?, ?, ?)",
            (CACHE_KEY, field, version, blob),
        )


def snapshot_of(*env_ids: str, version: int = 1) -> Snapshot:
    return Snapshot(
        {env_id: Environment.from_json(env_json(env_id, version)) for env_id in env_ids}, {}
    )


# ---------------------------------------------------------------------------------------------
# records the store cannot hold
# ---------------------------------------------------------------------------------------------


async def test_set_all_with_a_version_sqlite_cannot_hold_writes_the_others(
    store: SQLiteStore,
) -> None:
    # 2**63 does not fit SQLite's INTEGER: sqlite3 raised OverflowError, failing the whole write.
    records = [record("env:a", 2), record("env:b", 2**63), record("filter:c", 4)]
    with pytest.raises(PartialWriteError) as raised:
        await store.cache_set_all(records, False)
    assert as_map(await store.cache_get_all()) == as_map([records[0], records[2]])
    assert [(entry.field, entry.version) for entry in raised.value.refused] == [("env:b", 2**63)]
    assert str(MAX_STORED_VERSION) in raised.value.refused[0].reason
    assert raised.value.only_refused and raised.value.failed_fields == ["env:b"]


async def test_set_all_leaves_the_row_of_a_refused_record_as_it_was(store: SQLiteStore) -> None:
    await store.cache_set_all([record("env:a", 2), record("env:b", 2)], False)
    with pytest.raises(PartialWriteError):
        await store.cache_set_all(
            [record("env:a", 4), record("env:b", MAX_STORED_VERSION + 1)], False
        )
    assert as_map(await store.cache_get_all()) == as_map([record("env:a", 4), record("env:b", 2)])


async def test_upsert_of_a_version_out_of_range_is_refused_and_writes_nothing(
    store: SQLiteStore,
) -> None:
    with pytest.raises(PartialWriteError) as raised:
        await store.cache_upsert(record("env:a", -2))
    assert [entry.field for entry in raised.value.refused] == ["env:a"]
    assert await store.cache_get_all() == []


# ---------------------------------------------------------------------------------------------
# rows another program wrote
# ---------------------------------------------------------------------------------------------

#: (field, version, blob) of a foreign row, and what the report must say about it.
FOREIGN_ROWS = {
    "blob is text": ("env:text-blob", 2, "not bytes", "the blob is TEXT, not BLOB"),
    "blob is an integer": ("env:int-blob", 2, 7, "the blob is INTEGER, not BLOB"),
    "blob is NULL": ("env:null-blob", 2, None, "the blob is NULL, not BLOB"),
    "version is text": ("env:text-version", "abc", b"\x00", "the version is TEXT 'abc'"),
    "version is NULL": ("env:null-version", None, b"\x00", "the version is NULL"),
    "version is a fraction": ("env:real-version", 2.5, b"\x00", "the version is REAL 2.5"),
    "field is a blob": (b"env:blob-field", 2, b"\x00", "the field is BLOB, not TEXT"),
    "field is NULL": (None, 2, b"\x00", "the field is NULL, not TEXT"),
}


@pytest.mark.parametrize("case", sorted(FOREIGN_ROWS))
async def test_a_foreign_row_is_skipped_with_a_reason_and_the_rest_loads(
    store: SQLiteStore, path: Path, case: str
) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(LAX_TABLE)
    cache = make_cache(store)
    await cache.set_all(snapshot_of("good"))
    field, version, blob, problem = FOREIGN_ROWS[case]
    insert_row(path, field, version, blob)

    result = await cache.get_all()  # used to raise TypeError (or crash later in the codec)

    assert set(result.snapshot.environments) == {"good"}
    [skipped] = result.report.skipped
    assert skipped.reason is SkipReason.FOREIGN_DATA
    assert problem in skipped.message
    [inspected] = [
        entry for entry in cache.inspect_records(await cache.get_records()) if entry.problem
    ]
    assert inspected.problem == skipped


async def test_text_that_is_not_utf8_in_the_field_is_reported_and_removed(
    store: SQLiteStore, path: Path
) -> None:
    cache = make_cache(store)
    await cache.set_all(snapshot_of("good"))
    with sqlite3.connect(path) as conn:  # sqlite3 itself cannot read such text back as str
        conn.execute(
            "INSERT INTO autoconfig_cache VALUES (?, CAST(x'656e763aff' AS TEXT), 2, x'00')",
            (CACHE_KEY,),
        )
    result = await cache.get_all()
    assert set(result.snapshot.environments) == {"good"}
    assert [(item.field, item.reason) for item in result.report.skipped] == [
        ("<field not UTF-8: b'env:\\xff'>", SkipReason.FOREIGN_DATA)
    ]
    await cache.set_all(result.snapshot)
    assert [r.field for r in await store.cache_get_all()] == ["env:good"]


async def test_the_write_after_a_load_replaces_or_removes_every_foreign_row(
    store: SQLiteStore, path: Path
) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(LAX_TABLE)
    cache = make_cache(store)
    for field, version, blob, _ in FOREIGN_ROWS.values():
        insert_row(path, field, version, blob)
    # "text-version" and "text-blob" are items of the snapshot: their rows must be replaced
    # even though their stored versions do not compare (text) or look higher.
    insert_row(path, "env:text-version", "zzz", b"\x00")
    snapshot = snapshot_of("text-version", "text-blob", "fresh")

    assert len((await cache.get_all()).report.skipped) == len(FOREIGN_ROWS)
    await cache.set_all(snapshot)  # the first write after that load repairs what it found

    result = await cache.get_all()
    assert result.report.skipped == ()
    assert set(result.snapshot.environments) == {"text-version", "text-blob", "fresh"}


# ---------------------------------------------------------------------------------------------
# inflated stored versions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("inflated", [2**62, 1e125, -4], ids=["2**62", "1E+125", "negative"])
async def test_an_inflated_stored_version_is_reported_and_replaced_by_the_next_write(
    store: SQLiteStore, path: Path, inflated: float
) -> None:
    cache = make_cache(store)
    await cache.set_all(snapshot_of("e1", "e2", version=3))
    # Another program (or a bug) left e1 at a version no item can reach.
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE autoconfig_cache SET version = ? WHERE field = 'env:e1'", (inflated,))

    load = await cache.get_all()
    assert [(item.field, item.reason) for item in load.report.skipped] == [
        ("env:e1", SkipReason.INVALID_VERSION)
    ]
    # The guard used to compare 2*4 with 2**62 and keep the damaged row for ever.
    assert await cache.upsert(Environment.from_json(env_json("e1", 4))) is True
    reload = await cache.get_all()
    assert reload.report.skipped == ()
    assert reload.snapshot.environments["e1"].version == 4


async def test_set_all_and_purge_replace_an_inflated_stored_version(
    store: SQLiteStore, path: Path
) -> None:
    await store.cache_set_all([record("env:a", 2), record("env:b", 2)], False)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE autoconfig_cache SET version = 1e125")
    await store.cache_set_all([record("env:a", 2)], False)
    assert as_map(await store.cache_get_all()) == {"env:a": (2, blob_for("env:a", 2))}
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE autoconfig_cache SET version = ?", (2**62,))
    assert await store.cache_delete("env:a", store_version(1)) is True
    assert await store.cache_get_all() == []


async def test_records_at_the_highest_valid_version_are_held(store: SQLiteStore) -> None:
    highest = StoredRecord("env:top", MAX_STORED_VERSION, b"top")
    await store.cache_set_all([highest], False)
    assert await store.cache_get_all() == [highest]
