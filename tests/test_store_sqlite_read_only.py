"""The SQLite store opened read-only (``StoreSpec.read_only``, what ``cache inspect``, ``verify``
and ``export`` use): it creates no directory, file or table, reads missing storage as no records,
and reads an existing cache like a read-write store does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from autoconfig_cache.errors import StoreError, StoreSchemaError, StoreUnavailableError
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.sqlite import SQLiteStore
from autoconfig_cache.testing import record


def open_store(path: Path, *, read_only: bool, cache_key: str = "k") -> SQLiteStore:
    return SQLiteStore.from_spec(StoreSpec(f"sqlite://{path}", cache_key, read_only=read_only))


def tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


async def test_a_missing_directory_reads_as_no_records_and_is_not_created(tmp_path: Path) -> None:
    store = open_store(tmp_path / "nodir" / "cache.db", read_only=True)
    try:
        assert await store.cache_get_all() == []
    finally:
        await store.cache_close()
    assert tree(tmp_path) == []


async def test_a_file_without_the_table_reads_as_no_records_and_gets_no_table(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cache.db"
    db.touch()  # an empty file is an empty SQLite database
    store = open_store(db, read_only=True)
    try:
        assert await store.cache_get_all() == []
    finally:
        await store.cache_close()
    assert db.stat().st_size == 0
    assert tree(tmp_path) == ["cache.db"]


async def test_an_existing_cache_is_read_as_the_writer_wrote_it(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    writer = open_store(db, read_only=False)
    written = [record("env:a", 2), record("filter:b", 5)]
    try:
        await writer.cache_set_all(records=written, rewrite_unchanged=False)
        reader = open_store(db, read_only=True)
        try:
            by_field = sorted(await reader.cache_get_all(), key=lambda entry: entry.field)
            assert by_field == written
        finally:
            await reader.cache_close()
    finally:
        await writer.cache_close()


async def test_a_write_through_a_read_only_store_fails_and_creates_nothing(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "cache.db", read_only=True)
    try:
        with pytest.raises(StoreError, match="no SQLite cache file"):
            await store.cache_upsert(record=record("env:a", 2))
    finally:
        await store.cache_close()
    assert tree(tmp_path) == []


async def test_a_write_to_an_existing_file_through_a_read_only_store_changes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cache.db"
    writer = open_store(db, read_only=False)
    await writer.cache_upsert(record=record("env:a", 2))
    await writer.cache_close()
    reader = open_store(db, read_only=True)
    try:
        with pytest.raises(StoreError, match="opened read-only: nothing was written"):
            await reader.cache_upsert(record=record("env:a", 4))
        assert await reader.cache_get_all() == [record("env:a", 2)]
    finally:
        await reader.cache_close()


async def test_a_file_that_is_not_sqlite_is_still_a_schema_error(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    db.write_bytes(b"this is not a database, and it is long enough to have a header" * 20)
    store = open_store(db, read_only=True)
    try:
        with pytest.raises(StoreSchemaError):
            await store.cache_get_all()
    finally:
        await store.cache_close()


async def test_a_table_with_other_columns_is_still_a_schema_error(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE autoconfig_cache (id INTEGER PRIMARY KEY)")
    connection.close()
    store = open_store(db, read_only=True)
    try:
        with pytest.raises(StoreSchemaError, match="columns"):
            await store.cache_get_all()
    finally:
        await store.cache_close()


async def test_a_directory_in_the_files_place_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "cache.db").mkdir()
    store = open_store(tmp_path / "cache.db", read_only=True)
    try:
        with pytest.raises(StoreUnavailableError, match="is a directory"):
            await store.cache_get_all()
    finally:
        await store.cache_close()
