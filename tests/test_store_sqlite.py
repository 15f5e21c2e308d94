"""The built-in SQLite store: the conformance kit plus file, URL and multi-process behaviour."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from autoconfig_cache.errors import (
    ConfigurationError,
    StoreSchemaError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.sqlite import SQLiteStore
from autoconfig_cache.testing import StoreConformance, as_map, blob_for, record


def open_store(path: Path, cache_key: str = "cache-key", query: str = "") -> SQLiteStore:
    return SQLiteStore.from_spec(StoreSpec(f"sqlite://{path}{query}", cache_key))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestSQLiteStore(StoreConformance):
    """One file; ``store_factory`` opens more store objects (connections) on it."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLiteStore]:
        store = open_store(tmp_path / "cache.db")
        yield store
        await store.cache_close()

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[[], SQLiteStore]:
        return lambda: open_store(tmp_path / "cache.db")


# ---------------------------------------------------------------------------------------------
# URLs and registration
# ---------------------------------------------------------------------------------------------


def test_url_with_three_slashes_is_an_absolute_path() -> None:
    store = SQLiteStore.from_spec(StoreSpec("sqlite:///var/cache/app/cache.db", "k"))
    assert store.path == Path("/var/cache/app/cache.db")


def test_url_without_slashes_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore.from_spec(StoreSpec("sqlite:data/cache.db", "k"))
    assert store.path == tmp_path / "data" / "cache.db"


def test_url_with_a_host_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="three slashes"):
        SQLiteStore.from_spec(StoreSpec("sqlite://host/cache.db", "k"))


def test_url_without_a_path_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no file path"):
        SQLiteStore.from_spec(StoreSpec("sqlite://", "k"))


def test_timeout_comes_from_the_url_and_options_override_it() -> None:
    from_url = SQLiteStore.from_spec(StoreSpec("sqlite:///x.db?timeout=0.5", "k"))
    from_options = SQLiteStore.from_spec(
        StoreSpec("sqlite:///x.db?timeout=0.5", "k", {"timeout": "9"})
    )
    assert (from_url.timeout, from_options.timeout) == (0.5, 9.0)


def test_malformed_timeout_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        SQLiteStore.from_spec(StoreSpec("sqlite:///x.db?timeout=soon", "k"))


def test_factory_does_not_touch_the_filesystem(tmp_path: Path) -> None:
    open_store(tmp_path / "missing-dir" / "cache.db")
    assert not (tmp_path / "missing-dir").exists()


def test_sqlite_scheme_is_registered_through_the_discovery_hook(tmp_path: Path) -> None:
    registry = PluginRegistry(load_entry_points=False)
    assert registry.stores["sqlite"].plugin_name == "sqlite"
    store = registry.open_store(StoreSpec(f"sqlite://{tmp_path}/c.db", "k"))
    assert isinstance(store, SQLiteStore)


# ---------------------------------------------------------------------------------------------
# the file
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


async def test_new_file_and_its_wal_files_have_mode_0600(
    tmp_path: Path, permissive_umask: None
) -> None:
    path = tmp_path / "cache.db"
    store = open_store(path)
    await store.cache_upsert(record=record("env:a", 1))
    sidecars = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    modes = {p.name: mode_of(p) for p in [path, *sidecars] if p.exists()}
    await store.cache_close()
    assert modes == {"cache.db": 0o600, "cache.db-wal": 0o600, "cache.db-shm": 0o600}


async def test_missing_directory_is_created_with_mode_0700(
    tmp_path: Path, permissive_umask: None
) -> None:
    store = open_store(tmp_path / "new" / "cache.db")
    await store.cache_create_storage()
    await store.cache_close()
    assert mode_of(tmp_path / "new") == 0o700


async def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    path.touch()
    path.chmod(0o640)
    store = open_store(path)
    await store.cache_upsert(record=record("env:a", 1))
    await store.cache_close()
    assert mode_of(path) == 0o640


async def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    store = open_store(tmp_path / "cache.db")
    await store.cache_create_storage()
    await store.cache_close()
    with sqlite3.connect(tmp_path / "cache.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_unwritable_path_raises_store_unavailable_naming_it(tmp_path: Path) -> None:
    # A regular file where a directory should be: unwritable even for root.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    store = open_store(blocker / "cache.db")
    with pytest.raises(StoreUnavailableError, match="not-a-directory") as caught:
        await store.cache_get_all()
    assert "store URL" in str(caught.value)
    await store.cache_close()


async def test_path_that_is_a_directory_raises_store_unavailable(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(StoreUnavailableError, match="is a directory"):
        await store.cache_get_all()
    await store.cache_close()


async def test_store_recovers_once_the_path_becomes_usable(tmp_path: Path) -> None:
    blocker = tmp_path / "later"
    blocker.write_text("x")
    store = open_store(blocker / "cache.db")
    with pytest.raises(StoreUnavailableError):
        await store.cache_get_all()
    blocker.unlink()
    assert await store.cache_upsert(record=record("env:a", 1)) is True
    await store.cache_close()


async def test_file_that_is_not_a_database_raises_store_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    path.write_bytes(b"this is a text file, not SQLite" * 100)
    store = open_store(path)
    with pytest.raises(StoreSchemaError, match=str(path)):
        await store.cache_get_all()
    await store.cache_close()
    assert path.read_bytes().startswith(b"this is a text file")


async def test_table_with_another_schema_raises_store_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE autoconfig_cache (key TEXT PRIMARY KEY, value TEXT)")
    store = open_store(path)
    with pytest.raises(StoreSchemaError, match="expected"):
        await store.cache_upsert(record=record("env:a", 1))
    await store.cache_close()


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


async def test_records_persist_after_close_and_reopen(tmp_path: Path) -> None:
    first = open_store(tmp_path / "cache.db")
    await first.cache_set_all(
        records=[record("env:a", 3), record("filter:b", 4)], rewrite_unchanged=False
    )
    await first.cache_close()
    second = open_store(tmp_path / "cache.db")
    stored = as_map(await second.cache_get_all())
    await second.cache_close()
    assert stored == {"env:a": (3, blob_for("env:a", 3)), "filter:b": (4, blob_for("filter:b", 4))}


async def test_cache_keys_sharing_a_file_are_isolated(tmp_path: Path) -> None:
    one = open_store(tmp_path / "cache.db", "one")
    two = open_store(tmp_path / "cache.db", "two")
    await one.cache_set_all(records=[record("env:a", 1)], rewrite_unchanged=False)
    await two.cache_set_all(records=[record("env:b", 1)], rewrite_unchanged=False)
    await two.cache_clear()
    await two.cache_set_all(records=[record("env:c", 1)], rewrite_unchanged=False)
    one_fields = set(as_map(await one.cache_get_all()))
    two_fields = set(as_map(await two.cache_get_all()))
    await one.cache_close()
    await two.cache_close()
    assert (one_fields, two_fields) == ({"env:a"}, {"env:c"})


async def test_set_all_writes_only_changed_rows(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    store = open_store(path)
    records = [record(f"env:{index}", 1) for index in range(200)]
    await store.cache_set_all(records=records, rewrite_unchanged=False)
    with sqlite3.connect(path) as conn:  # count every row write from now on
        conn.executescript(
            """
            CREATE TABLE writes (kind TEXT);
            CREATE TRIGGER count_insert AFTER INSERT ON autoconfig_cache
                BEGIN INSERT INTO writes VALUES ('insert'); END;
            CREATE TRIGGER count_update AFTER UPDATE ON autoconfig_cache
                BEGIN INSERT INTO writes VALUES ('update'); END;
            CREATE TRIGGER count_delete AFTER DELETE ON autoconfig_cache
                BEGIN INSERT INTO writes VALUES ('delete'); END;
            """
        )
    changed = [*records[1:-1], record(records[-1].field, 2), record("env:new", 1)]
    await store.cache_set_all(records=changed, rewrite_unchanged=False)
    await store.cache_close()
    with sqlite3.connect(path) as conn:
        writes = sorted(kind for (kind,) in conn.execute("SELECT kind FROM writes"))
    assert writes == ["delete", "insert", "update"]


async def test_set_all_is_rolled_back_when_it_fails(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    store = open_store(path)
    await store.cache_set_all(records=[record("env:a", 1)], rewrite_unchanged=False)
    with sqlite3.connect(path) as conn:  # make the second insert of the next set_all fail
        conn.execute(
            "CREATE TRIGGER refuse AFTER INSERT ON autoconfig_cache WHEN NEW.field = 'env:c' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(Exception, match="refused"):
        await store.cache_set_all(
            records=[record("env:b", 1), record("env:c", 1)], rewrite_unchanged=False
        )
    stored = set(as_map(await store.cache_get_all()))
    await store.cache_close()
    assert stored == {"env:a"}


async def test_write_blocked_by_another_process_past_the_timeout_raises_store_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.db"
    store = open_store(path, query="?timeout=0.2")
    await store.cache_create_storage()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # hold the write lock
    try:
        with pytest.raises(StoreTimeoutError, match="locked"):
            await store.cache_upsert(record=record("env:a", 1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await store.cache_upsert(record=record("env:a", 1)) is True
    await store.cache_close()


async def test_close_during_a_lock_wait_returns_promptly(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    store = open_store(path, query="?timeout=1")
    await store.cache_create_storage()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        task = asyncio.create_task(store.cache_upsert(record=record("env:a", 1)))
        await asyncio.sleep(0.05)  # the upsert is now waiting for the lock
        await asyncio.wait_for(store.cache_close(), timeout=30)
        with pytest.raises(Exception) as caught:
            await asyncio.wait_for(task, timeout=30)
        assert type(caught.value).__name__ in ("StoreClosedError", "CancelledError")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# ---------------------------------------------------------------------------------------------
# several processes on one file
# ---------------------------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import asyncio, random, sys
    from pathlib import Path
    from autoconfig_cache.records import StoredRecord
    from autoconfig_cache.stores.sqlite import SQLiteStore

    async def main(path, seed):
        store = SQLiteStore(Path(path), "shared", timeout=30)
        plan = [(f"env:{f}", v) for f in range(8) for v in range(1, 26)]
        random.Random(seed).shuffle(plan)
        wins = 0
        for index, (field, version) in enumerate(plan):
            blob = f"{field}@{version}".encode()
            if index % 25 == 0:
                snapshot = [StoredRecord(f"env:{f}", 1, f"env:{f}@1".encode()) for f in range(8)]
                await store.cache_set_all(records=snapshot, rewrite_unchanged=False)
            if await store.cache_upsert(record=StoredRecord(field, version, blob)):
                wins += 1
        await store.cache_close()
        print(wins)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


async def test_several_processes_on_one_file_keep_the_highest_version(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WRITER,
            str(path),
            str(seed),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in range(3)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), timeout=120) for p in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()
    store = SQLiteStore(path, "shared")
    stored = as_map(await store.cache_get_all())
    await store.cache_close()
    assert stored == {f"env:{f}": (25, blob_for(f"env:{f}", 25)) for f in range(8)}


def test_stored_records_are_plain_rows_others_can_read(tmp_path: Path) -> None:
    async def write() -> None:
        store = open_store(tmp_path / "cache.db")
        await store.cache_upsert(record=StoredRecord("env:a", 7, b"\x00blob"))
        await store.cache_close()

    asyncio.run(write())
    with sqlite3.connect(tmp_path / "cache.db") as conn:
        rows = conn.execute("SELECT cache_key, field, version, blob FROM autoconfig_cache")
        assert rows.fetchall() == [("cache-key", "env:a", 7, b"\x00blob")]
