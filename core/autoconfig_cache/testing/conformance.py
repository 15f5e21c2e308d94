"""The store conformance kit: a pytest base class every store must pass.

Subclass :class:`StoreConformance` in a class whose name starts with ``Test`` and supply an
async fixture ``store`` that yields a fresh, EMPTY store plugin object (and closes it afterwards).
Optionally supply ``store_factory``: a fixture returning a callable that opens ANOTHER store
object on the same cache key (sync or async callable); the multi-writer tests then use several
store objects, as several processes would. Without it they run concurrent tasks on one object.

Class attributes let a store adjust sizes or declare what it cannot do; see
:class:`StoreConformance`. Every test is named after the one behaviour it checks.

A store whose class sets ``keeps_tombstones_apart = True`` (the optional capability described
by :class:`~autoconfig_cache.records.StoredRecord`) is also checked for it: tombstone records come
back with ``deleted=True``, and the version guards hold across the item/tombstone transitions.
For any other store those tests are skipped, with a reason saying so.

Races. A black box cannot force an interleaving inside a store, so the race tests do two things:

* barrier rounds: in each of ``race_rounds`` rounds every writer starts the same kind of
  operation at the same instant (an :class:`asyncio.Barrier`), on records chosen so that any lost
  update or doubly-applied guard shows in the outcome of that round;
* held interleavings, for stores whose write is a client-side read-then-write and that await
  ``self._between_read_and_write(field)`` between the two (the seam of
  :class:`~autoconfig_cache.storebase.StoreBase`): the kit replaces that method on the instance,
  performs a competing write through another store object exactly there, then lets the store
  go on. A store that never reaches the seam gets a visible skip for those tests.

Records a store cannot hold (:meth:`StoreConformance.unstorable_records`: by default versions
outside ``0..MAX_STORED_VERSION``; a subclass adds its backend's limits). A store may hold such a
record exactly, or refuse it alone: write the others, leave what it held for that field, then
raise :class:`~autoconfig_cache.errors.PartialWriteError` whose ``refused`` names it with a
reason. One record failing the whole write (the store would then be re-synchronised, and fail
again, forever) fails the checks.

A store that implements the optional ``cache_get_versions`` hook (the store audit's cheap read)
is checked to agree with ``cache_get_all``: the same fields, tombstones included, at the same
versions. Any other store gets a visible skip for those tests.

Cost. A store that keeps the write-count probe (``records_written``, with
``supports_write_probe = True`` as every :class:`~autoconfig_cache.storebase.StoreBase` has) is
checked to write O(changed) records in ``cache_set_all``; any other store gets the visible skip
"write probe not implemented: O(changed) not checked". Every store is checked to read the
``blob`` of a ``cache_set_all`` record only when it writes that record: the core encrypts a
record's blob when it is first read (:class:`BlobReads` counts those reads).
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from autoconfig_cache.errors import PartialWriteError, StoreClosedError
from autoconfig_cache.pending import PendingRecord
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.storebase import MAX_STORED_VERSION

from .hooks import StoreHooks


def blob_for(field: str, version: int, size: int = 0) -> bytes:
    """A blob that depends only on ``field`` and ``version``: any writer of a version writes it."""
    base = f"{field}@{version}".encode()
    if size <= len(base):
        return base
    return (base * (size // len(base) + 1))[:size]


def record(field: str, version: int, blob: bytes | None = None) -> StoredRecord:
    """A :class:`StoredRecord`, with :func:`blob_for` as the default blob."""
    return StoredRecord(field, version, blob_for(field, version) if blob is None else blob)


def tombstone(field: str, version: int, blob: bytes | None = None) -> StoredRecord:
    """A tombstone record (``deleted=True``); the blob defaults to :func:`blob_for`."""
    return StoredRecord(
        field, version, blob_for(field, version) if blob is None else blob, deleted=True
    )


def as_states(records: Sequence[StoredRecord]) -> dict[str, tuple[int, bytes, bool]]:
    """Records by field as ``(version, blob, deleted)``, asserting that no field appears twice."""
    result: dict[str, tuple[int, bytes, bool]] = {}
    for item in records:
        assert item.field not in result, f"get_all returned field {item.field!r} twice"
        assert type(item.deleted) is bool, f"deleted of {item.field!r} is not a bool"
        result[item.field] = (item.version, item.blob, item.deleted)
    return result


def as_map(records: Sequence[StoredRecord]) -> dict[str, tuple[int, bytes]]:
    """Records by field, asserting that no field appears twice."""
    result: dict[str, tuple[int, bytes]] = {}
    for item in records:
        assert item.field not in result, f"get_all returned field {item.field!r} twice"
        result[item.field] = (item.version, item.blob)
    return result


OPERATIONS_AFTER_CLOSE: dict[str, Callable[[StoreHooks], Awaitable[object]]] = {
    "get_all": lambda hooks: hooks.get_all(),
    "set_all": lambda hooks: hooks.set_all([record("env:a", 1)]),
    "upsert": lambda hooks: hooks.upsert(record("env:a", 1)),
    "delete": lambda hooks: hooks.delete("env:a", 1),
    "clear": lambda hooks: hooks.clear(),
}


async def _open_another(store_factory: Callable[[], Any]) -> StoreHooks:
    """Another store object from the subclass's ``store_factory`` (sync or async), as hooks."""
    other = store_factory()
    if inspect.isawaitable(other):
        other = await other
    return StoreHooks(other)


async def _refusal_of(
    write: Awaitable[object], unstorable: StoredRecord
) -> PartialWriteError | None:
    """Run a write holding ``unstorable``: ``None`` when it succeeds (the store holds such a
    record), or the :class:`PartialWriteError` refusing it, checked to name it with a reason.

    Fails when the record made the whole write fail, the contract's one forbidden outcome: a
    store writes the other records, then raises ``PartialWriteError(..., refused=[...])``.
    """
    try:
        await write
    except PartialWriteError as error:
        refused = {entry.field: entry for entry in error.refused}
        assert set(refused) == {unstorable.field}, (
            f"PartialWriteError.refused names {sorted(refused)}; expected exactly the record "
            f"the store cannot hold, {unstorable.field!r} (failed_fields: {error.failed_fields})"
        )
        entry = refused[unstorable.field]
        assert entry.version == unstorable.version and entry.reason.strip(), (
            f"the refusal of {unstorable!r} must carry its version and a reason; got {entry!r}"
        )
        assert unstorable.field in error.failed_fields  # what callers of 0.2 read
        return error
    except Exception as error:
        pytest.fail(
            f"a write holding {unstorable!r}, a record the store cannot hold, raised {error!r}: "
            "one record must not fail the others. Write them, leave what the store holds for "
            "that field, then raise PartialWriteError(message, refused=[RefusedRecord(...)])"
        )
    return None


class BlobReads:
    """Records whose blob, like the core's, is made on first read, counting those reads.

    The core hands ``cache_set_all`` records that encode and encrypt their blob when a store
    first reads it (:class:`~autoconfig_cache.pending.PendingRecord`); these do the same with a
    fixed blob, and note each field whose blob was read.
    """

    def __init__(self) -> None:
        self.read: list[str] = []

    def wrap(self, records: Sequence[StoredRecord]) -> list[StoredRecord]:
        """``records`` as pending records whose first blob read is counted."""
        return [
            PendingRecord(
                item.field, item.version, deleted=item.deleted, make=partial(self._read, item)
            )
            for item in records
        ]

    def _read(self, item: StoredRecord) -> bytes:
        self.read.append(item.field)
        return item.blob

    def shown(self) -> str:
        """The fields read, for a message (the first few and how many)."""
        return f"{len(self.read)} record(s): {sorted(self.read)[:5]}"


#: Name of the seam a read-then-write store awaits between its read and its write.
SEAM = "_between_read_and_write"

#: Reason of the visible skip of the O(changed) checks (third-party CI may match on it).
NO_WRITE_PROBE = "write probe not implemented: O(changed) not checked"


class HeldInterleaving:
    """A replacement for a store instance's ``_between_read_and_write`` seam.

    The first time the store reaches the seam (it has read, and is about to write), the hold runs
    ``compete`` (a write through another store object) to completion and only then lets the store
    go on. Later calls are counted: one with ``field=None`` or the competed field means the store
    read again after the competing write (a retry), so it may legitimately act on what it saw.

    :param compete: the competing write.
    :param field: the field ``compete`` writes.
    :param timeout: seconds the competing write may take (a store that holds a lock across the
        seam would block it forever).
    """

    def __init__(
        self, compete: Callable[[], Awaitable[object]], field: str, timeout: float
    ) -> None:
        self.compete = compete
        self.field = field
        self.timeout = timeout
        self.reached = False
        self.reads_after = 0
        self.error: Exception | None = None
        self._competing = False

    async def __call__(self, field: str | None) -> None:
        if self._competing:
            return  # the competing write itself, through the same store object
        if self.reached:
            if field is None or field == self.field:
                self.reads_after += 1
            return
        self.reached = True
        self._competing = True
        try:
            await asyncio.wait_for(self.compete(), timeout=self.timeout)
        except Exception as exc:  # reported after the held operation, not through the store
            self.error = exc
        finally:
            self._competing = False

    @classmethod
    def require_seam(cls, hooks: StoreHooks) -> None:
        """Skip (visibly) unless the store object has the seam and accepts a replacement."""
        store = hooks.store
        if not callable(getattr(store, SEAM, None)):
            pytest.skip(
                f"{type(store).__name__} has no {SEAM}(field) seam (a StoreBase has one): the "
                "held-interleaving check does not apply; the barrier race tests still ran"
            )
        if not hasattr(store, "__dict__"):
            pytest.skip(f"{type(store).__name__} has no __dict__: the kit cannot hold its seam")

    async def run(self, hooks: StoreHooks, operation: Awaitable[object], name: str) -> object:
        """Run ``operation`` on ``hooks``' store with this hold installed on the instance.

        Skips (visibly) when the store never reached the seam; fails when the competing write
        failed or could not finish while the store was held.
        """
        store = hooks.store
        setattr(store, SEAM, self)
        try:
            result = await asyncio.wait_for(operation, timeout=self.timeout * 2)
        finally:
            delattr(store, SEAM)  # the instance attribute only: the class's method is back
        if not self.reached:
            pytest.skip(
                f"{type(store).__name__}.cache_{name} did not await {SEAM}: it is not a "
                "client-side read-then-write (or does not use the seam), so the held check "
                "does not apply; the barrier race tests still ran"
            )
        if self.error is not None:
            pytest.fail(
                f"the competing write, made while cache_{name} was held between its read and its "
                f"write, failed: {self.error!r} (a store must not hold a lock that blocks other "
                f"writers across {SEAM})"
            )
        return result


@pytest.mark.asyncio
class StoreConformance:
    """Behaviours every store must have. Subclass it in a ``Test...`` class.

    Required fixture: ``store`` (async, yields a fresh EMPTY store object, closes it after).
    Optional fixture: ``store_factory`` (returns a callable opening another store object on the
    same cache key; the kit closes what it opens).

    A subclass may override the class attributes below to fit its backend.
    """

    #: Size in bytes of the blob in :meth:`test_large_item_round_trips` (DynamoDB allows 400 KB
    #: per item, attribute names included, so the default stays below it).
    large_item_size: ClassVar[int] = 300_000
    #: Number of records in the many-items tests.
    many_items_count: ClassVar[int] = 10_000
    #: Number of concurrent writers (store objects from ``store_factory``, or tasks on one store).
    concurrent_writers: ClassVar[int] = 4
    #: Whether ``cache_set_all`` is atomic for readers (they see the old or the new snapshot,
    #: never a mixture). A store that cannot promise it sets ``False`` and the test is skipped.
    atomic_set_all: ClassVar[bool] = True
    #: Upper bound used only so that a hanging store fails instead of blocking the test run.
    hang_guard_seconds: ClassVar[float] = 30.0
    #: Rounds of each barrier-synchronised race test (each round is a fresh chance for a
    #: non-atomic guard to lose an update; a broken store fails in the first few).
    race_rounds: ClassVar[int] = 20
    #: Whether ``cache_set_all``'s writes and deletes are guarded against other writers (never
    #: lower a version, never delete what another writer wrote after the store's read). A store
    #: that trades this away (unconditional batch writes) sets ``False``: the set_all race tests
    #: then run as expected failures (xfail), so the trade-off stays visible in every report.
    guarded_set_all: ClassVar[bool] = True

    # -----------------------------------------------------------------------------------------
    # fixtures
    # -----------------------------------------------------------------------------------------

    @pytest.fixture
    def conformance_hooks(self, store: object) -> StoreHooks:
        """The ``store`` fixture's object behind a plugin manager, as the core calls it."""
        return StoreHooks(store)

    @pytest.fixture
    def conformance_store_factory(self, request: pytest.FixtureRequest) -> Any:
        """The subclass's ``store_factory`` fixture value, or ``None`` when there is none."""
        try:
            return request.getfixturevalue("store_factory")
        except pytest.FixtureLookupError:
            return None

    @pytest_asyncio.fixture
    async def conformance_writers(
        self, conformance_hooks: StoreHooks, conformance_store_factory: Any
    ) -> AsyncIterator[list[StoreHooks]]:
        """``concurrent_writers`` hooks: the store plus other store objects on its cache key.

        Without a ``store_factory`` every entry is the one store (concurrent tasks on it).
        """
        writers = [conformance_hooks]
        opened: list[StoreHooks] = []
        try:
            for _ in range(self.concurrent_writers - 1):
                if conformance_store_factory is None:
                    writers.append(conformance_hooks)
                    continue
                hooks = await _open_another(conformance_store_factory)
                opened.append(hooks)
                writers.append(hooks)
            yield writers
        finally:
            for hooks in opened:
                await hooks.close()

    @pytest_asyncio.fixture
    async def conformance_competitor(
        self, conformance_hooks: StoreHooks, conformance_store_factory: Any
    ) -> AsyncIterator[StoreHooks]:
        """Another store object on the store's cache key (the store itself without a factory)."""
        if conformance_store_factory is None:
            yield conformance_hooks
            return
        hooks = await _open_another(conformance_store_factory)
        try:
            yield hooks
        finally:
            await hooks.close()

    # -----------------------------------------------------------------------------------------
    # helpers
    # -----------------------------------------------------------------------------------------

    def many_records(self, prefix: str = "env:item-", version: int = 1) -> list[StoredRecord]:
        """``many_items_count`` distinct records."""
        return [record(f"{prefix}{index}", version) for index in range(self.many_items_count)]

    async def close_and_check_stopped(self, hooks: StoreHooks, task: asyncio.Task[Any]) -> None:
        """Close the store; the task must end with CancelledError or StoreClosedError.

        A task that had already finished when ``cache_close`` was called may have succeeded.
        """
        was_done = False

        async def close() -> None:
            nonlocal was_done
            was_done = task.done()  # observed at the moment cache_close is called
            await hooks.close()

        await asyncio.wait_for(close(), timeout=self.hang_guard_seconds)
        done, _ = await asyncio.wait({task}, timeout=self.hang_guard_seconds)
        if task not in done:
            task.cancel()
            pytest.fail(
                f"an operation in flight was still running {self.hang_guard_seconds} s after "
                "cache_close returned; close must cancel in-flight work"
            )
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            assert was_done, (
                "an operation in flight when cache_close was called completed normally; "
                "close must cancel it (CancelledError or StoreClosedError)"
            )
        else:
            assert isinstance(error, StoreClosedError), (
                f"an operation cancelled by cache_close raised {error!r}; expected "
                "StoreClosedError (or CancelledError)"
            )

    # -----------------------------------------------------------------------------------------
    # get_all / set_all
    # -----------------------------------------------------------------------------------------

    async def test_empty_store_returns_no_records(self, conformance_hooks: StoreHooks) -> None:
        assert await conformance_hooks.get_all() == []

    async def test_set_all_then_get_all_round_trips_fields_versions_and_blobs(
        self, conformance_hooks: StoreHooks
    ) -> None:
        records = [
            record("env:a", 1, b"alpha"),
            record("env:b", 7, b"bravo\x00\xff"),
            record("filter:c", 42, b"charlie"),
        ]
        await conformance_hooks.set_all(records)
        assert as_map(await conformance_hooks.get_all()) == {
            "env:a": (1, b"alpha"),
            "env:b": (7, b"bravo\x00\xff"),
            "filter:c": (42, b"charlie"),
        }

    async def test_set_all_removes_fields_absent_from_the_snapshot(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 1), record("env:b", 1)])
        await conformance_hooks.set_all([record("env:b", 1), record("filter:c", 1)])
        assert set(as_map(await conformance_hooks.get_all())) == {"env:b", "filter:c"}

    async def test_set_all_removes_absent_fields_whatever_their_version(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.upsert(record("env:stale", 1000))
        await conformance_hooks.set_all([record("env:kept", 1)])
        assert set(as_map(await conformance_hooks.get_all())) == {"env:kept"}

    async def test_set_all_with_an_empty_snapshot_empties_the_store(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 1), record("filter:b", 2)])
        await conformance_hooks.set_all([])
        assert await conformance_hooks.get_all() == []

    async def test_set_all_writes_a_higher_version(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.set_all([record("env:a", 1, b"one")])
        await conformance_hooks.set_all([record("env:a", 2, b"two")])
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (2, b"two")}

    async def test_set_all_keeps_a_stored_higher_version(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 7, b"seven")])
        await conformance_hooks.set_all([record("env:a", 5, b"five")])
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (7, b"seven")}

    async def test_set_all_with_rewrite_unchanged_keeps_a_stored_higher_version(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 7, b"seven")])
        await conformance_hooks.set_all([record("env:a", 5, b"five")], rewrite_unchanged=True)
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (7, b"seven")}

    async def test_set_all_leaves_an_equal_version_alone_without_rewrite_unchanged(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 3, b"first")])
        await conformance_hooks.set_all([record("env:a", 3, b"second")])
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (3, b"first")}

    async def test_set_all_with_rewrite_unchanged_rewrites_an_equal_version(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 3, b"old key")])
        await conformance_hooks.set_all([record("env:a", 3, b"new key")], rewrite_unchanged=True)
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (3, b"new key")}

    async def test_set_all_leaves_records_it_does_not_change_intact(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 1), record("env:b", 1)])
        await conformance_hooks.set_all([record("env:a", 1), record("env:b", 2)])
        assert as_map(await conformance_hooks.get_all()) == {
            "env:a": (1, blob_for("env:a", 1)),
            "env:b": (2, blob_for("env:b", 2)),
        }

    # -----------------------------------------------------------------------------------------
    # upsert
    # -----------------------------------------------------------------------------------------

    async def test_upsert_writes_an_absent_field(self, conformance_hooks: StoreHooks) -> None:
        assert await conformance_hooks.upsert(record("env:a", 1, b"one")) is True
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (1, b"one")}

    async def test_upsert_writes_a_higher_version(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.upsert(record("env:a", 1, b"one"))
        assert await conformance_hooks.upsert(record("env:a", 2, b"two")) is True
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (2, b"two")}

    async def test_upsert_ignores_an_equal_version(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.upsert(record("env:a", 2, b"first"))
        assert await conformance_hooks.upsert(record("env:a", 2, b"second")) is False
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (2, b"first")}

    async def test_upsert_ignores_a_lower_version(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.upsert(record("env:a", 5, b"five"))
        assert await conformance_hooks.upsert(record("env:a", 4, b"four")) is False
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (5, b"five")}

    async def test_upsert_leaves_other_fields_alone(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.set_all([record("env:a", 1), record("filter:b", 1)])
        await conformance_hooks.upsert(record("env:c", 1))
        assert as_map(await conformance_hooks.get_all()) == {
            "env:a": (1, blob_for("env:a", 1)),
            "filter:b": (1, blob_for("filter:b", 1)),
            "env:c": (1, blob_for("env:c", 1)),
        }

    # -----------------------------------------------------------------------------------------
    # delete / clear
    # -----------------------------------------------------------------------------------------

    async def test_delete_removes_a_field_stored_at_a_lower_version(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 3), record("env:b", 1)])
        assert await conformance_hooks.delete("env:a", 4) is True
        assert set(as_map(await conformance_hooks.get_all())) == {"env:b"}

    async def test_delete_keeps_a_field_stored_at_an_equal_version(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 3)])
        assert await conformance_hooks.delete("env:a", 3) is False
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (3, blob_for("env:a", 3))}

    async def test_delete_keeps_a_field_stored_at_a_higher_version(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 3)])
        assert await conformance_hooks.delete("env:a", 2) is False
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (3, blob_for("env:a", 3))}

    async def test_delete_of_an_absent_field_returns_false(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.set_all([record("env:a", 1)])
        assert await conformance_hooks.delete("env:missing", 10) is False
        assert set(as_map(await conformance_hooks.get_all())) == {"env:a"}

    async def test_clear_removes_every_record(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.set_all([record("env:a", 1), record("filter:b", 2)])
        await conformance_hooks.clear()
        assert await conformance_hooks.get_all() == []

    async def test_store_accepts_writes_after_clear(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.set_all([record("env:a", 5)])
        await conformance_hooks.clear()
        assert await conformance_hooks.upsert(record("env:a", 1)) is True
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (1, blob_for("env:a", 1))}

    async def test_create_storage_keeps_existing_records(
        self, conformance_hooks: StoreHooks
    ) -> None:
        if not conformance_hooks.implements("cache_create_storage"):
            pytest.skip("the store does not implement cache_create_storage")
        await conformance_hooks.create_storage()
        await conformance_hooks.set_all([record("env:a", 1)])
        await conformance_hooks.create_storage()
        assert set(as_map(await conformance_hooks.get_all())) == {"env:a"}

    # -----------------------------------------------------------------------------------------
    # sizes and contents
    # -----------------------------------------------------------------------------------------

    async def test_large_item_round_trips(self, conformance_hooks: StoreHooks) -> None:
        large = random.Random(1).randbytes(self.large_item_size)
        await conformance_hooks.set_all([record("env:large", 1, large), record("env:small", 1)])
        stored = as_map(await conformance_hooks.get_all())
        assert stored["env:large"] == (1, large)
        assert set(stored) == {"env:large", "env:small"}

    async def test_large_item_upsert_round_trips(self, conformance_hooks: StoreHooks) -> None:
        large = blob_for("env:large", 2, self.large_item_size)
        assert await conformance_hooks.upsert(record("env:large", 2, large)) is True
        assert as_map(await conformance_hooks.get_all()) == {"env:large": (2, large)}

    async def test_many_items_round_trip(self, conformance_hooks: StoreHooks) -> None:
        records = self.many_records()
        await conformance_hooks.set_all(records)
        assert as_map(await conformance_hooks.get_all()) == as_map(records)

    async def test_set_all_of_many_items_applies_a_small_change(
        self, conformance_hooks: StoreHooks
    ) -> None:
        records = self.many_records()
        await conformance_hooks.set_all(records)
        changed = [*records[1:-1], record(records[-1].field, 2), record("env:new", 1)]
        await conformance_hooks.set_all(changed)
        assert as_map(await conformance_hooks.get_all()) == as_map(changed)

    async def test_blobs_with_every_byte_value_survive(self, conformance_hooks: StoreHooks) -> None:
        every_byte = bytes(range(256))
        reversed_bytes = bytes(reversed(range(256)))
        await conformance_hooks.set_all([record("env:bytes", 1, every_byte)])
        await conformance_hooks.upsert(record("filter:bytes", 1, reversed_bytes))
        assert as_map(await conformance_hooks.get_all()) == {
            "env:bytes": (1, every_byte),
            "filter:bytes": (1, reversed_bytes),
        }

    async def test_field_names_with_unicode_and_colons_survive(
        self, conformance_hooks: StoreHooks
    ) -> None:
        fields = ["env:ünïcødé-环境-🚀", "filter:a:b:c", "env:with space", "env:" + "x" * 200]
        await conformance_hooks.set_all([record(fields[0], 1), record(fields[1], 2)])
        await conformance_hooks.upsert(record(fields[2], 3))
        await conformance_hooks.upsert(record(fields[3], 4))
        assert as_map(await conformance_hooks.get_all()) == {
            field: (version, blob_for(field, version))
            for field, version in zip(fields, (1, 2, 3, 4), strict=True)
        }
        assert await conformance_hooks.delete(fields[1], 3) is True
        assert set(as_map(await conformance_hooks.get_all())) == {fields[0], fields[2], fields[3]}

    async def test_versions_round_trip_exactly(self, conformance_hooks: StoreHooks) -> None:
        versions = {"env:zero": 0, "env:big": 2**31 + 1, "env:huge": 2**53 + 1}
        await conformance_hooks.set_all([record(field, v) for field, v in versions.items()])
        stored = as_map(await conformance_hooks.get_all())
        assert {field: version for field, (version, _) in stored.items()} == versions

    async def test_version_guard_compares_numbers_not_text(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.upsert(record("env:a", 9))
        assert await conformance_hooks.upsert(record("env:a", 10)) is True
        assert await conformance_hooks.upsert(record("env:a", 9)) is False
        assert as_map(await conformance_hooks.get_all())["env:a"][0] == 10

    # -----------------------------------------------------------------------------------------
    # the optional cache_get_versions: what the store audit reads instead of every blob
    # -----------------------------------------------------------------------------------------

    def require_versions_hook(self, hooks: StoreHooks) -> None:
        """Skip (visibly) unless the store implements the optional ``cache_get_versions``."""
        if not hooks.implements("cache_get_versions"):
            pytest.skip(
                "the store does not implement the optional cache_get_versions: the store audit "
                "reads cache_get_all instead"
            )

    async def assert_versions_agree(self, hooks: StoreHooks) -> dict[str, int]:
        """``cache_get_versions`` names the fields ``cache_get_all`` returns, each with the
        version ``cache_get_all`` gives it (only the field, for a record it reports as foreign)."""
        records = await hooks.get_all()
        versions = await hooks.get_versions()
        assert set(versions) == {item.field for item in records}, (
            "cache_get_versions and cache_get_all disagree on the fields stored: only in "
            f"get_versions {sorted(set(versions) - {item.field for item in records})[:10]}, only "
            f"in get_all {sorted({item.field for item in records} - set(versions))[:10]}"
        )
        for item in records:
            if item.problem is None:
                assert versions[item.field] == item.version, (
                    f"cache_get_versions gives {item.field!r} version {versions[item.field]}; "
                    f"cache_get_all gives {item.version}"
                )
        return versions

    async def test_get_versions_is_empty_before_any_write(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_versions_hook(conformance_hooks)
        assert await conformance_hooks.get_versions() == {}

    async def test_get_versions_agrees_with_get_all(self, conformance_hooks: StoreHooks) -> None:
        self.require_versions_hook(conformance_hooks)
        snapshot = [
            record("env:a", 1),
            record("env:big", 2**53 + 1),
            record("env:max", MAX_STORED_VERSION),
            record("filter:ünïcødé-🚀", 4),
            tombstone("env:deleted", 7),
        ]
        await conformance_hooks.set_all(snapshot)
        await conformance_hooks.upsert(record("filter:upserted", 3))
        await conformance_hooks.upsert(tombstone("env:a", 3))  # an item becomes a tombstone
        versions = await self.assert_versions_agree(conformance_hooks)
        assert versions == {
            "env:a": 3,
            "env:big": 2**53 + 1,
            "env:max": MAX_STORED_VERSION,
            "filter:ünïcødé-🚀": 4,
            "env:deleted": 7,
            "filter:upserted": 3,
        }

    async def test_get_versions_follows_deletes_and_clear(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_versions_hook(conformance_hooks)
        await conformance_hooks.set_all(
            [record("env:a", 2), record("env:b", 2), record("env:c", 2)]
        )
        await conformance_hooks.delete("env:a", 3)
        await conformance_hooks.set_all([record("env:b", 2)])
        assert await self.assert_versions_agree(conformance_hooks) == {"env:b": 2}
        await conformance_hooks.clear()
        assert await conformance_hooks.get_versions() == {}

    async def test_get_versions_of_many_items_agrees_with_get_all(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_versions_hook(conformance_hooks)
        records = self.many_records(version=5)
        await conformance_hooks.set_all(records)
        versions = await self.assert_versions_agree(conformance_hooks)
        assert len(versions) == len(records) and set(versions.values()) == {5}

    # -----------------------------------------------------------------------------------------
    # records a store cannot hold: refused one by one, never failing the rest of a write
    # -----------------------------------------------------------------------------------------

    def unstorable_records(self) -> list[StoredRecord]:
        """Records the store may refuse (or must then hold exactly): by default, versions
        outside ``0..MAX_STORED_VERSION``, which the core never writes. A subclass adds records
        over its backend's limits (the DynamoDB store's tests add a row over 400 KB)."""
        return [
            record("env:negative-version", -1),
            record("env:version-too-high", MAX_STORED_VERSION + 1),
        ]

    async def test_set_all_with_a_record_it_cannot_hold_writes_the_others(
        self, conformance_hooks: StoreHooks
    ) -> None:
        for unstorable in self.unstorable_records():
            others = [record("env:before", 1), record("filter:after", 2)]
            error = await _refusal_of(
                conformance_hooks.set_all([others[0], unstorable, others[1]]), unstorable
            )
            stored = as_map(await conformance_hooks.get_all())
            expected = as_map(others)
            if error is None:  # the store holds it after all: then exactly
                expected[unstorable.field] = (unstorable.version, unstorable.blob)
            assert stored == expected, (
                f"after a set_all with {unstorable!r}, which the store "
                f"{'accepted' if error is None else 'refused'}, the store holds {set(stored)}"
            )

    async def test_set_all_leaves_what_it_held_for_a_record_it_refuses(
        self, conformance_hooks: StoreHooks
    ) -> None:
        for unstorable in self.unstorable_records():
            held = record(unstorable.field, 1)
            try:
                await conformance_hooks.set_all([held])
            except PartialWriteError:
                continue  # the field itself is what the store cannot hold: nothing is held
            error = await _refusal_of(conformance_hooks.set_all([unstorable]), unstorable)
            if error is None:
                continue  # accepted: the write test above checks it is held exactly
            assert as_map(await conformance_hooks.get_all()) == as_map([held]), (
                f"a set_all that refused {unstorable!r} changed what the store held for its field"
            )

    async def test_upsert_of_a_record_it_cannot_hold_refuses_it_alone(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.upsert(record("env:other", 1))
        for unstorable in self.unstorable_records():
            error = await _refusal_of(conformance_hooks.upsert(unstorable), unstorable)
            stored = as_map(await conformance_hooks.get_all())
            if error is None:
                assert stored.get(unstorable.field) == (unstorable.version, unstorable.blob)
            else:
                assert unstorable.field not in stored
            assert stored["env:other"] == (1, blob_for("env:other", 1))

    # -----------------------------------------------------------------------------------------
    # tombstones: every store keeps them; stores declaring keeps_tombstones_apart flag them
    # -----------------------------------------------------------------------------------------

    def require_tombstones_apart(self, hooks: StoreHooks) -> None:
        """Skip (visibly) unless the store declares ``keeps_tombstones_apart = True``."""
        if getattr(hooks.store, "keeps_tombstones_apart", False) is not True:
            pytest.skip(
                "the store does not declare keeps_tombstones_apart = True: it keeps tombstones "
                "as ordinary records (a Relay Proxy sharing it would read them), so the "
                "capability's checks do not apply"
            )

    async def test_tombstone_records_are_version_guarded_like_any_record(
        self, conformance_hooks: StoreHooks
    ) -> None:
        # Whatever the store does with the deleted flag, a tombstone is a record: it round-trips
        # and outranks lower versions, and a higher version replaces it.
        assert await conformance_hooks.upsert(tombstone("env:a", 7, b"gone")) is True
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (7, b"gone")}
        assert await conformance_hooks.upsert(record("env:a", 6)) is False
        assert await conformance_hooks.upsert(record("env:a", 8, b"back")) is True
        assert as_map(await conformance_hooks.get_all()) == {"env:a": (8, b"back")}

    async def test_upserted_tombstone_round_trips_with_deleted_true(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        assert await conformance_hooks.upsert(tombstone("env:a", 7, b"gone")) is True
        assert await conformance_hooks.upsert(record("filter:b", 4, b"live")) is True
        assert as_states(await conformance_hooks.get_all()) == {
            "env:a": (7, b"gone", True),
            "filter:b": (4, b"live", False),
        }

    async def test_set_all_round_trips_items_and_tombstones_with_their_deleted_flags(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        every_byte = bytes(range(256))
        await conformance_hooks.set_all(
            [
                record("env:a", 4, b"alpha"),
                tombstone("env:b", 5, every_byte),
                tombstone("filter:c", 2**53 + 1, b"charlie"),
            ]
        )
        assert as_states(await conformance_hooks.get_all()) == {
            "env:a": (4, b"alpha", False),
            "env:b": (5, every_byte, True),
            "filter:c": (2**53 + 1, b"charlie", True),
        }

    async def test_tombstone_at_a_higher_version_replaces_the_item(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.upsert(record("env:a", 6, b"item"))
        assert await conformance_hooks.upsert(tombstone("env:a", 7, b"gone")) is True
        assert as_states(await conformance_hooks.get_all()) == {"env:a": (7, b"gone", True)}

    async def test_tombstone_at_an_equal_or_lower_version_leaves_the_item(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.upsert(record("env:a", 6, b"item"))
        assert await conformance_hooks.upsert(tombstone("env:a", 6)) is False
        assert await conformance_hooks.upsert(tombstone("env:a", 5)) is False
        assert as_states(await conformance_hooks.get_all()) == {"env:a": (6, b"item", False)}

    async def test_item_at_an_equal_or_lower_version_leaves_the_tombstone(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.upsert(tombstone("env:a", 7, b"gone"))
        assert await conformance_hooks.upsert(record("env:a", 7)) is False
        assert await conformance_hooks.upsert(record("env:a", 6)) is False
        assert as_states(await conformance_hooks.get_all()) == {"env:a": (7, b"gone", True)}

    async def test_item_at_a_higher_version_replaces_the_tombstone(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.upsert(tombstone("env:a", 7, b"gone"))
        assert await conformance_hooks.upsert(record("env:a", 8, b"back")) is True
        assert as_states(await conformance_hooks.get_all()) == {"env:a": (8, b"back", False)}

    async def test_set_all_turns_items_into_tombstones_and_back(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.set_all([record("env:a", 2), record("env:b", 2)])
        await conformance_hooks.set_all([tombstone("env:a", 3), record("env:b", 2)])
        assert as_states(await conformance_hooks.get_all()) == {
            "env:a": (3, blob_for("env:a", 3), True),
            "env:b": (2, blob_for("env:b", 2), False),
        }
        await conformance_hooks.set_all([record("env:a", 4), tombstone("env:b", 5)])
        assert as_states(await conformance_hooks.get_all()) == {
            "env:a": (4, blob_for("env:a", 4), False),
            "env:b": (5, blob_for("env:b", 5), True),
        }

    async def test_set_all_keeps_a_stored_tombstone_over_an_older_or_equal_item(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.upsert(tombstone("env:a", 7, b"gone"))
        await conformance_hooks.set_all([record("env:a", 6)])
        await conformance_hooks.set_all([record("env:a", 7)])
        assert as_states(await conformance_hooks.get_all()) == {"env:a": (7, b"gone", True)}

    async def test_set_all_keeps_a_stored_item_over_an_older_tombstone(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.upsert(record("env:a", 8, b"item"))
        await conformance_hooks.set_all([tombstone("env:a", 7)])
        assert as_states(await conformance_hooks.get_all()) == {"env:a": (8, b"item", False)}

    async def test_set_all_removes_tombstones_absent_from_the_snapshot(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.set_all([tombstone("env:a", 3), record("env:b", 2)])
        await conformance_hooks.set_all([record("env:b", 2)])
        assert as_states(await conformance_hooks.get_all()) == {
            "env:b": (2, blob_for("env:b", 2), False)
        }
        # Nothing of the removed tombstone is left behind to block a lower version.
        assert await conformance_hooks.upsert(record("env:a", 1)) is True

    async def test_set_all_with_rewrite_unchanged_rewrites_an_equal_version_tombstone(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.set_all([tombstone("env:a", 5, b"old key")])
        await conformance_hooks.set_all([tombstone("env:a", 5, b"new key")], rewrite_unchanged=True)
        assert as_states(await conformance_hooks.get_all()) == {"env:a": (5, b"new key", True)}

    async def test_delete_removes_a_tombstone_stored_at_a_lower_version_only(
        self, conformance_hooks: StoreHooks
    ) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.set_all([tombstone("env:a", 5), tombstone("env:b", 5)])
        assert await conformance_hooks.delete("env:a", 5) is False
        assert await conformance_hooks.delete("env:b", 6) is True
        assert as_states(await conformance_hooks.get_all()) == {
            "env:a": (5, blob_for("env:a", 5), True)
        }
        assert await conformance_hooks.upsert(record("env:b", 1)) is True

    async def test_clear_removes_tombstones(self, conformance_hooks: StoreHooks) -> None:
        self.require_tombstones_apart(conformance_hooks)
        await conformance_hooks.set_all([tombstone("env:a", 9), record("env:b", 1)])
        await conformance_hooks.clear()
        assert await conformance_hooks.get_all() == []
        assert await conformance_hooks.upsert(record("env:a", 1)) is True

    async def test_concurrent_upserts_of_items_and_tombstones_keep_the_highest_version(
        self, conformance_writers: list[StoreHooks]
    ) -> None:
        self.require_tombstones_apart(conformance_writers[0])
        # Odd versions are tombstones, even ones items (as records.store_version encodes them);
        # half of the fields end deleted, half alive.
        fields = {f"env:mixed-{index}": 20 + index % 2 for index in range(10)}
        written: list[tuple[str, int]] = []

        def make(field: str, version: int) -> StoredRecord:
            return tombstone(field, version) if version % 2 else record(field, version)

        async def writer(hooks: StoreHooks, seed: int) -> None:
            plan = [(f, v) for f, top in fields.items() for v in range(1, top + 1)]
            random.Random(seed).shuffle(plan)
            for field, version in plan:
                if await hooks.upsert(make(field, version)):
                    written.append((field, version))

        await asyncio.wait_for(
            asyncio.gather(*(writer(w, seed) for seed, w in enumerate(conformance_writers))),
            timeout=self.hang_guard_seconds * 4,
        )
        stored = as_states(await conformance_writers[0].get_all())
        assert stored == {
            field: (top, blob_for(field, top), top % 2 == 1) for field, top in fields.items()
        }
        for field, top in fields.items():
            assert written.count((field, top)) == 1, f"{field} v{top} written more than once"

    # -----------------------------------------------------------------------------------------
    # concurrency
    # -----------------------------------------------------------------------------------------

    async def test_concurrent_upserts_keep_the_highest_version_of_every_field(
        self, conformance_writers: list[StoreHooks]
    ) -> None:
        fields = [f"env:concurrent-{index}" for index in range(10)]
        top = 20
        written: list[tuple[str, int]] = []

        async def writer(hooks: StoreHooks, seed: int) -> None:
            plan = [(field, version) for field in fields for version in range(1, top + 1)]
            random.Random(seed).shuffle(plan)
            for field, version in plan:
                if await hooks.upsert(record(field, version)):
                    written.append((field, version))

        await asyncio.wait_for(
            asyncio.gather(*(writer(w, seed) for seed, w in enumerate(conformance_writers))),
            timeout=self.hang_guard_seconds * 4,
        )
        stored = as_map(await conformance_writers[0].get_all())
        assert stored == {field: (top, blob_for(field, top)) for field in fields}
        # The guard is atomic: exactly one writer succeeded in writing each field's top version.
        for field in fields:
            assert written.count((field, top)) == 1, f"{field} v{top} written more than once"

    async def test_concurrent_set_all_and_upserts_never_lower_a_version(
        self, conformance_writers: list[StoreHooks]
    ) -> None:
        # Every snapshot holds every field, so set_all never deletes one and the outcome is
        # deterministic: each field ends at the highest version any writer wrote for it.
        fields = [f"filter:mixed-{index}" for index in range(20)]
        highest: dict[str, int] = dict.fromkeys(fields, 0)

        async def writer(hooks: StoreHooks, seed: int) -> None:
            rng = random.Random(seed)
            for round_number in range(30):
                if round_number % 3 == 0:
                    snapshot = [record(field, rng.randint(1, 50)) for field in fields]
                    for item in snapshot:
                        highest[item.field] = max(highest[item.field], item.version)
                    await hooks.set_all(snapshot)
                else:
                    item = record(rng.choice(fields), rng.randint(1, 50))
                    highest[item.field] = max(highest[item.field], item.version)
                    await hooks.upsert(item)

        await asyncio.wait_for(
            asyncio.gather(*(writer(w, seed) for seed, w in enumerate(conformance_writers))),
            timeout=self.hang_guard_seconds * 4,
        )
        stored = as_map(await conformance_writers[0].get_all())
        assert stored == {field: (v, blob_for(field, v)) for field, v in highest.items()}

    async def test_concurrent_reader_sees_the_old_or_the_new_snapshot_never_a_mixture(
        self, conformance_writers: list[StoreHooks]
    ) -> None:
        if not self.atomic_set_all:
            pytest.skip("the store declares atomic_set_all = False")
        writer, reader = conformance_writers[0], conformance_writers[-1]
        count = min(self.many_items_count, 2000)
        old = [record(f"env:old-{index}", 1) for index in range(count)]
        new = [record(f"env:new-{index}", 1) for index in range(count)]
        await writer.set_all(old)
        old_fields = {item.field for item in old}
        new_fields = {item.field for item in new}
        seen: list[set[str]] = []

        async def read_until(task: asyncio.Task[None]) -> None:
            while True:
                finished = task.done()
                seen.append(set(as_map(await reader.get_all())))
                if finished:
                    return
                await asyncio.sleep(0)  # a store whose reads never suspend must let set_all run

        write = asyncio.create_task(writer.set_all(new))
        await asyncio.wait_for(read_until(write), timeout=self.hang_guard_seconds * 4)
        await write
        for fields in seen:
            assert fields in (old_fields, new_fields), (
                f"a reader saw {len(fields & old_fields)} old and {len(fields & new_fields)} "
                "new fields: set_all is not atomic"
            )
        assert seen[-1] == new_fields

    async def test_store_objects_on_one_cache_key_see_each_others_writes(
        self, conformance_writers: list[StoreHooks]
    ) -> None:
        first, other = conformance_writers[0], conformance_writers[-1]
        if first is other:
            pytest.skip("no store_factory fixture: the store has a single object per cache key")
        await first.set_all([record("env:a", 1)])
        assert await other.upsert(record("env:a", 1)) is False
        assert await other.upsert(record("env:b", 1)) is True
        assert set(as_map(await first.get_all())) == {"env:a", "env:b"}

    # -----------------------------------------------------------------------------------------
    # races: barrier rounds (any store) and held interleavings (stores using the seam)
    # -----------------------------------------------------------------------------------------

    async def race(self, steps: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
        """Run ``steps`` as tasks released together by a barrier; their results in order."""
        barrier = asyncio.Barrier(len(steps))

        async def run(step: Callable[[], Awaitable[Any]]) -> Any:
            await barrier.wait()
            return await step()

        return await asyncio.wait_for(
            asyncio.gather(*(run(step) for step in steps)), timeout=self.hang_guard_seconds
        )

    def expect_guarded_set_all(self, request: pytest.FixtureRequest) -> None:
        """Mark the test an expected failure when the store declares ``guarded_set_all = False``."""
        if not self.guarded_set_all:
            request.node.add_marker(
                pytest.mark.xfail(
                    reason="the store declares guarded_set_all = False: its set_all may lower "
                    "a version or delete a newer re-add when writers race",
                    strict=False,
                )
            )

    async def test_racing_upserts_write_a_record_once_and_keep_the_highest_version(
        self, conformance_writers: list[StoreHooks]
    ) -> None:
        # Each round, all writers start together: first the same record (a guard that checks,
        # then writes, lets two writers both "win"), then one distinct version each of a new
        # field (such a guard lets a lower version land last).
        count = len(conformance_writers)
        rng = random.Random(13)
        expected: dict[str, int] = {}
        for round_number in range(self.race_rounds):
            same = record(f"env:race-once-{round_number}", 1)
            results = await self.race([partial(w.upsert, same) for w in conformance_writers])
            assert results.count(True) == 1, (
                f"round {round_number}: {results.count(True)} of {count} racing upserts of one "
                "record reported writing it: the version check and the write are not atomic"
            )
            field = f"env:race-top-{round_number}"
            versions = rng.sample(range(1, count + 1), count)
            await self.race(
                [
                    partial(w.upsert, record(field, v))
                    for w, v in zip(conformance_writers, versions, strict=True)
                ]
            )
            expected[same.field] = 1
            expected[field] = count
        stored = as_map(await conformance_writers[0].get_all())
        lowered = {f: v for f, (v, _) in stored.items() if expected.get(f) != v}
        assert not lowered, (
            f"racing upserts left {len(lowered)} fields below the highest version written, e.g. "
            f"{sorted(lowered.items())[:3]}: the version check and the write are not atomic"
        )
        assert stored == {f: (v, blob_for(f, v)) for f, v in expected.items()}

    async def test_racing_set_alls_keep_the_highest_version_of_every_field(
        self, conformance_writers: list[StoreHooks], request: pytest.FixtureRequest
    ) -> None:
        # Each round, all writers start a set_all together; every snapshot holds every field
        # (nothing is deleted) at a version above the last round's, each field's versions dealt
        # out at random. A set_all that decides what to write from a read and then writes
        # without a guard lets whichever writer lands last lower some fields.
        self.expect_guarded_set_all(request)
        count = len(conformance_writers)
        fields = [f"filter:race-{index}" for index in range(4)]
        rng = random.Random(14)
        for round_number in range(self.race_rounds):
            base = round_number * count
            dealt = {f: rng.sample(range(base + 1, base + count + 1), count) for f in fields}
            snapshots = [[record(f, dealt[f][i]) for f in fields] for i in range(count)]
            await self.race(
                [partial(w.set_all, s) for w, s in zip(conformance_writers, snapshots, strict=True)]
            )
            top = base + count
            stored = as_map(await conformance_writers[0].get_all())
            lowered = sorted(f for f in fields if stored.get(f, (0,))[0] != top)
            assert not lowered, (
                f"round {round_number}: after racing set_alls {lowered} are not at the highest "
                f"version written ({top}): set_all's writes are not version-guarded"
            )
            assert stored == {f: (top, blob_for(f, top)) for f in fields}

    async def test_upsert_held_between_its_read_and_its_write_keeps_a_newer_version(
        self, conformance_hooks: StoreHooks, conformance_competitor: StoreHooks
    ) -> None:
        HeldInterleaving.require_seam(conformance_hooks)
        await conformance_hooks.upsert(record("env:held", 1))
        hold = HeldInterleaving(
            lambda: conformance_competitor.upsert(record("env:held", 5)),
            "env:held",
            self.hang_guard_seconds,
        )
        await hold.run(conformance_hooks, conformance_hooks.upsert(record("env:held", 3)), "upsert")
        # Whichever order the two writes take, version 5 is what remains.
        stored = as_map(await conformance_hooks.get_all())
        assert stored["env:held"][0] == 5, (
            f"upsert of version 3, held after its read, overwrote version 5 written meanwhile by "
            f"another writer (stored: version {stored['env:held'][0]}): its write is not "
            "guarded by the version it read"
        )
        assert stored == {"env:held": (5, blob_for("env:held", 5))}

    async def test_set_all_held_between_its_read_and_its_write_keeps_a_newer_version(
        self,
        conformance_hooks: StoreHooks,
        conformance_competitor: StoreHooks,
        request: pytest.FixtureRequest,
    ) -> None:
        HeldInterleaving.require_seam(conformance_hooks)
        self.expect_guarded_set_all(request)
        await conformance_hooks.set_all(
            [record("env:a", 1), record("env:b", 1), record("env:c", 1)]
        )
        hold = HeldInterleaving(
            lambda: conformance_competitor.upsert(record("env:a", 5)),
            "env:a",
            self.hang_guard_seconds,
        )
        snapshot = [record("env:a", 2), record("env:b", 2), record("env:c", 1)]
        await hold.run(conformance_hooks, conformance_hooks.set_all(snapshot), "set_all")
        # Whichever order the two writes take, env:a stays at version 5.
        stored = as_map(await conformance_hooks.get_all())
        assert stored.get("env:a", (None,))[0] == 5, (
            f"set_all, held after its read, wrote env:a down over version 5 written meanwhile "
            f"by another writer (stored: {stored.get('env:a', (None,))[0]}): its writes are "
            "not guarded by the stored version"
        )
        assert stored == {
            "env:a": (5, blob_for("env:a", 5)),
            "env:b": (2, blob_for("env:b", 2)),
            "env:c": (1, blob_for("env:c", 1)),
        }

    async def test_set_all_held_between_its_read_and_its_delete_keeps_a_field_re_added(
        self,
        conformance_hooks: StoreHooks,
        conformance_competitor: StoreHooks,
        request: pytest.FixtureRequest,
    ) -> None:
        # env:gone vanishes from the snapshot, so set_all reads it and means to delete it; while
        # it is held there, another writer deletes it and adds it back at a higher version.
        HeldInterleaving.require_seam(conformance_hooks)
        self.expect_guarded_set_all(request)
        await conformance_hooks.set_all([record("env:kept", 1), record("env:gone", 1)])

        async def re_add() -> None:
            assert await conformance_competitor.delete("env:gone", 2) is True
            assert await conformance_competitor.upsert(record("env:gone", 3)) is True

        hold = HeldInterleaving(re_add, "env:gone", self.hang_guard_seconds)
        await hold.run(
            conformance_hooks, conformance_hooks.set_all([record("env:kept", 2)]), "set_all"
        )
        stored = as_map(await conformance_hooks.get_all())
        assert stored.get("env:kept") == (2, blob_for("env:kept", 2))
        if "env:gone" not in stored:
            # Only a store that read again after the re-add (a retry) may act on it.
            assert hold.reads_after > 0, (
                "set_all deleted env:gone, which another writer re-added at version 3 after "
                "set_all had read it at version 1 (and set_all did not read again): its delete "
                "is not conditional on the version it read"
            )
        else:
            assert stored["env:gone"] == (3, blob_for("env:gone", 3))

    # -----------------------------------------------------------------------------------------
    # cost: the write-count probe (records_written) proves set_all writes O(changed) records
    # -----------------------------------------------------------------------------------------

    async def seed_counted(self, hooks: StoreHooks, records: Sequence[StoredRecord]) -> None:
        """Skip (visibly) without the probe; write ``records`` to the empty store, and check
        that the probe counted each (so that a later "nothing written" cannot pass vacuously)."""
        store = hooks.store
        if getattr(type(store), "supports_write_probe", False) is not True or not isinstance(
            getattr(store, "records_written", None), int
        ):
            pytest.skip(NO_WRITE_PROBE)
        before = self.records_written(hooks)
        await hooks.set_all(records)
        counted = self.records_written(hooks) - before
        assert counted == len(records), (
            f"a set_all of {len(records)} new records into an empty store moved "
            f"records_written by {counted}: the write-count probe does not count what is written"
        )

    def records_written(self, hooks: StoreHooks) -> int:
        """The store's write-count probe (checked to exist by :meth:`seed_counted`)."""
        written: int = getattr(hooks.store, "records_written")  # noqa: B009 - not on a Protocol
        return written

    async def test_identical_set_all_writes_no_record(self, conformance_hooks: StoreHooks) -> None:
        records = [record(f"env:probe-{index}", 1) for index in range(20)]
        await self.seed_counted(conformance_hooks, records)
        before = self.records_written(conformance_hooks)
        await conformance_hooks.set_all(records)
        written = self.records_written(conformance_hooks) - before
        assert written == 0, (
            f"a set_all identical to the stored records wrote {written} of them: set_all must "
            "write only what changed (O(changed)), not rewrite the whole snapshot"
        )

    async def test_set_all_writes_one_record_per_changed_item(
        self, conformance_hooks: StoreHooks
    ) -> None:
        records = [record(f"env:probe-{index}", 1) for index in range(20)]
        await self.seed_counted(conformance_hooks, records)
        steps = {
            "one version raised": [*records[:-1], record(records[-1].field, 2)],
            "one field removed": [*records[1:-1], record(records[-1].field, 2)],
            "one field added": [*records[1:-1], record(records[-1].field, 2), record("env:x", 1)],
        }
        for change, snapshot in steps.items():
            before = self.records_written(conformance_hooks)
            await conformance_hooks.set_all(snapshot)
            written = self.records_written(conformance_hooks) - before
            assert written == 1, (
                f"a set_all with {change} wrote {written} records instead of 1: set_all must "
                "write only what changed (O(changed))"
            )
        assert as_map(await conformance_hooks.get_all()) == as_map(steps["one field added"])

    # -----------------------------------------------------------------------------------------
    # cost: blobs the core makes on first read (PendingRecord) are read only for what is written
    # -----------------------------------------------------------------------------------------

    async def test_set_all_reads_no_blob_when_nothing_changed(
        self, conformance_hooks: StoreHooks
    ) -> None:
        records = [record(f"env:blob-{index}", 1) for index in range(20)]
        await conformance_hooks.set_all(records)
        counter = BlobReads()
        await conformance_hooks.set_all(counter.wrap(records))
        assert not counter.read, (
            f"a set_all identical to the stored records read the blob of {counter.shown()}: "
            "read `blob` only of the records you write (the core encrypts a record's blob when "
            "it is first read, so reading every blob costs an encryption each)"
        )

    async def test_set_all_reads_no_blob_of_an_unchanged_record(
        self, conformance_hooks: StoreHooks
    ) -> None:
        records = [record(f"env:blob-{index}", 1) for index in range(20)]
        await conformance_hooks.set_all(records)
        changed = [*records[:-1], record(records[-1].field, 2)]
        counter = BlobReads()
        await conformance_hooks.set_all(counter.wrap(changed))
        # The changed record's blob is read now, or later by a store that keeps the record.
        assert set(counter.read) <= {records[-1].field}, (
            f"a set_all changing only {records[-1].field!r} read the blob of {counter.shown()}: "
            "read `blob` only of the records you write (each first read costs an encryption)"
        )
        assert as_map(await conformance_hooks.get_all()) == as_map(changed)

    # -----------------------------------------------------------------------------------------
    # close
    # -----------------------------------------------------------------------------------------

    async def test_close_cancels_an_in_flight_get_all(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.set_all(self.many_records())
        task = asyncio.create_task(conformance_hooks.get_all())
        await asyncio.sleep(0)  # let the read start, so that it is in flight
        await self.close_and_check_stopped(conformance_hooks, task)

    async def test_close_cancels_an_in_flight_set_all(self, conformance_hooks: StoreHooks) -> None:
        task = asyncio.create_task(conformance_hooks.set_all(self.many_records()))
        await asyncio.sleep(0)  # let the write start, so that it is in flight
        await self.close_and_check_stopped(conformance_hooks, task)

    async def test_operation_scheduled_before_close_does_not_outlive_it(
        self, conformance_hooks: StoreHooks
    ) -> None:
        await conformance_hooks.upsert(record("env:a", 1))
        task = asyncio.create_task(conformance_hooks.get_all())
        await self.close_and_check_stopped(conformance_hooks, task)

    async def test_close_is_idempotent(self, conformance_hooks: StoreHooks) -> None:
        await conformance_hooks.upsert(record("env:a", 1))
        await conformance_hooks.close()
        await asyncio.wait_for(conformance_hooks.close(), timeout=self.hang_guard_seconds)

    async def test_close_of_an_unused_store_succeeds(self, conformance_hooks: StoreHooks) -> None:
        await asyncio.wait_for(conformance_hooks.close(), timeout=self.hang_guard_seconds)
        with pytest.raises(StoreClosedError):
            await conformance_hooks.get_all()

    @pytest.mark.parametrize("operation", sorted(OPERATIONS_AFTER_CLOSE))
    async def test_operation_after_close_raises_store_closed(
        self, conformance_hooks: StoreHooks, operation: str
    ) -> None:
        await conformance_hooks.upsert(record("env:a", 1))
        await conformance_hooks.close()
        with pytest.raises(StoreClosedError):
            await OPERATIONS_AFTER_CLOSE[operation](conformance_hooks)
