"""Encrypt only what changed, on the real SQLite and memory stores (scenarios in
:mod:`tests.encrypt_changed`), and the records whose blob is made on first read."""

from __future__ import annotations

import copy
import pickle
import sqlite3
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from autoconfig_cache.pending import (
    PendingRecord,
    UnencodableItemError,
    pending_record,
    settled,
)
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.memory import MemoryStore, forget_shared_memory_stores
from autoconfig_cache.stores.sqlite import TABLE, SQLiteStore
from tests import encrypt_changed as scenario
from tests.encrypt_changed import CACHE_KEY, StoreOpener

Scenario = Callable[[StoreOpener], object]


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


def sqlite_opener(path: Path) -> StoreOpener:
    return lambda: SQLiteStore.from_spec(StoreSpec(f"sqlite://{path}", CACHE_KEY))


@pytest.fixture
def memory_opener() -> StoreOpener:
    forget_shared_memory_stores()
    return lambda: MemoryStore("encrypt-changed", CACHE_KEY)


SCENARIOS = [
    scenario.identical_put_costs_nothing,
    scenario.one_changed_item_costs_one_encryption,
    scenario.rewrite_unchanged_encrypts_every_item,
    scenario.unencodable_item_is_refused_alone,
]


@pytest.mark.parametrize("run", SCENARIOS, ids=lambda run: run.__name__)
async def test_sqlite(sqlite_path: Path, run: Scenario) -> None:
    await run(sqlite_opener(sqlite_path))  # type: ignore[misc]


@pytest.mark.parametrize("run", SCENARIOS, ids=lambda run: run.__name__)
async def test_memory(memory_opener: StoreOpener, run: Scenario) -> None:
    await run(memory_opener)  # type: ignore[misc]


async def test_sqlite_out_of_band_delete_is_repaired_by_the_next_put(sqlite_path: Path) -> None:
    def delete(field: str) -> None:
        with sqlite3.connect(sqlite_path) as conn:
            deleted = conn.execute(
                f"DELETE FROM {TABLE} WHERE cache_key = ? AND field = ?",
                (CACHE_KEY, field),
            ).rowcount
        assert deleted == 1

    await scenario.out_of_band_delete_is_repaired_by_the_next_put(
        sqlite_opener(sqlite_path), delete
    )


# -- PendingRecord ------------------------------------------------------------------------------


def pending(made: list[str], blob: object = b"blob") -> PendingRecord:
    def make() -> bytes:
        made.append("made")
        return blob  # type: ignore[return-value]

    return PendingRecord("env:a", 4, make=make)


def test_pending_blob_is_made_once_on_first_read() -> None:
    made: list[str] = []
    record = pending(made)
    assert (record.field, record.version, record.deleted, record.problem) == (
        "env:a",
        4,
        False,
        None,
    )
    assert made == []
    assert "not made" in repr(record)  # a repr (a log line) encrypts nothing
    assert made == []
    assert record.blob == b"blob"
    assert record.blob == b"blob"
    assert made == ["made"]


def test_pending_record_equals_hashes_copies_and_evolves_as_a_record() -> None:
    record = pending([])
    assert record == PendingRecord("env:a", 4, b"blob")
    assert hash(record) == hash(PendingRecord("env:a", 4, b"blob"))
    plain = StoredRecord("env:a", 4, b"blob")
    assert settled(record) == plain and type(settled(record)) is StoredRecord
    assert pickle.loads(pickle.dumps(record)) == plain
    assert copy.copy(record) == plain
    evolved = attrs.evolve(pending([]), version=6)
    assert (evolved.field, evolved.version, evolved.blob) == ("env:a", 6, b"blob")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.version = 5  # type: ignore[misc]


def test_pending_failure_is_remembered_and_listed() -> None:
    calls: list[str] = []
    failures: list[PendingRecord] = []

    def make() -> bytes:
        calls.append("made")
        raise UnencodableItemError("env:a", "it cannot be encoded (test)")

    record = PendingRecord("env:a", 4, make=make, failures=failures)
    for _ in range(2):
        with pytest.raises(UnencodableItemError):
            _ = record.blob
    assert calls == ["made"]
    assert failures == [record]
    assert record.failure is not None and record.failure.reason == "it cannot be encoded (test)"


def test_pending_blob_that_is_not_bytes_is_a_failure() -> None:
    failures: list[PendingRecord] = []
    record = PendingRecord("env:a", 4, make=lambda: "text", failures=failures)  # type: ignore[arg-type, return-value]
    with pytest.raises(UnencodableItemError, match="its blob is a str, not bytes"):
        _ = record.blob
    assert failures == [record]


class CountingMaker:
    """A blob maker shared by many records, as the core's is: notes each source it encodes."""

    def __init__(self) -> None:
        self.failures: list[PendingRecord] | None = []
        self.made: list[tuple[object, str]] = []

    def make_blob(self, source: object, field: str) -> bytes:
        self.made.append((source, field))
        if source == "unencodable":
            raise UnencodableItemError(field, "it cannot be encoded (test)")
        return f"{field}={source}".encode()


def test_pending_record_is_a_frozen_record_whose_shared_maker_runs_once_per_record() -> None:
    maker = CountingMaker()
    first = pending_record("env:a", 4, False, "item-a", maker)
    second = pending_record("filter:b", 7, True, "item-b", maker)
    assert type(first) is PendingRecord and isinstance(first, StoredRecord)
    assert (second.field, second.version, second.deleted, second.problem) == (
        "filter:b",
        7,
        True,
        None,
    )
    assert not first.made and "not made" in repr(first) and maker.made == []
    assert first.blob == first.blob == b"env:a=item-a"
    assert first.made and maker.made == [("item-a", "env:a")]  # made once; second untouched
    assert first == PendingRecord("env:a", 4, b"env:a=item-a")
    assert settled(first) == StoredRecord("env:a", 4, b"env:a=item-a")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        second.version = 9


def test_pending_record_failure_is_remembered_and_listed_in_its_makers_failures() -> None:
    maker = CountingMaker()
    record = pending_record("env:a", 4, False, "unencodable", maker)
    for _ in range(2):
        with pytest.raises(UnencodableItemError):
            _ = record.blob
    assert maker.made == [("unencodable", "env:a")]
    assert maker.failures == [record]
    assert record.failure is not None and record.failure.reason == "it cannot be encoded (test)"
