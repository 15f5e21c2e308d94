"""Records whose blob is made when a store first reads it.

``AutoConfigCache.set_all`` hands the store the whole snapshot, and the store writes only the
records whose version it does not already hold. Encrypting every item up front would spend an
encryption on each record the store then skips (all of them, for a put identical to what is
stored). A :class:`PendingRecord` carries ``field``, ``version`` and ``deleted`` at once and
makes its ``blob`` (encode and encrypt) the first time something reads it, so a store that reads
the blobs of the records it writes pays one encryption per write and nothing for the rest, while
the store itself, not a memory of the core, still decides what is stale.

A put builds one such record per item (10,000 of them for 10,000 environments, most never
written), so building one is kept cheap: :func:`pending_item_records` sets the slots directly in
one loop, and the records of one put share one :class:`BlobMaker` instead of each holding a
closure.

To a store it is a :class:`~autoconfig_cache.records.StoredRecord` like any other: equality,
hashing, ``attrs.evolve``, pickling and copying all see the blob (making it if needed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .models import Tombstone
from .records import FIELD_PREFIXES, StoredRecord

__all__ = [
    "BlobMaker",
    "PendingRecord",
    "UnencodableItemError",
    "pending_item_records",
    "pending_record",
    "settled",
]

_NOT_GIVEN: Any = object()


class UnencodableItemError(Exception):
    """The item behind a :class:`PendingRecord` cannot be encoded (the core refuses it alone).

    Raised where the store reads ``blob``, so inside the store's ``cache_set_all``; the record
    remembers it (see :attr:`PendingRecord.failure`), which is how the core learns of it even
    when a store wraps or swallows the exception.

    :param reason: why, in words that never include the item's content (it is logged).
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class BlobMaker(Protocol):
    """What makes the blobs of the pending records of one write (shared by all of them).

    :attr:`failures` is the list a record appends itself to when its blob cannot be made: how
    the core learns of it, whatever the store did with the exception (``None``: no list).
    """

    @property
    def failures(self) -> list[PendingRecord] | None:
        """Where records whose blob cannot be made are listed."""

    def make_blob(self, source: Any, field: str) -> bytes:
        """The blob of the record of ``field`` built from ``source`` (an item, for the core).

        :raises UnencodableItemError: ``source`` cannot be encoded.
        """


class _CallMaker:
    """The :class:`BlobMaker` of a record built with ``make=``: the source is the callable."""

    __slots__ = ("failures",)

    def __init__(self, failures: list[PendingRecord] | None) -> None:
        self.failures = failures

    def make_blob(self, source: Callable[[], bytes], field: str) -> bytes:
        return source()


class PendingRecord(StoredRecord):
    """A :class:`~autoconfig_cache.records.StoredRecord` whose ``blob`` is made on first read.

    :param make: returns the blob (bytes), or raises :class:`UnencodableItemError`. Called at
        most once; the blob is kept, and a failure is remembered and raised again.
    :param failures: a list the record appends itself to when its blob cannot be made: how the
        core learns of it, whatever the store did with the exception.

    The remaining parameters are those of :class:`StoredRecord` (so that ``attrs.evolve``, which
    passes every attribute, builds a record whose blob is already made). The core builds its
    records with :func:`pending_item_records` (one at a time: :func:`pending_record`) instead,
    which is several times cheaper.
    """

    __slots__ = ("_failure", "_maker", "_source")

    _source: Any
    _maker: BlobMaker
    _failure: UnencodableItemError | None

    def __init__(
        self,
        field: str,
        version: int,
        blob: bytes = _NOT_GIVEN,
        deleted: bool = False,
        problem: str | None = None,
        *,
        make: Callable[[], bytes] | None = None,
        failures: list[PendingRecord] | None = None,
    ) -> None:
        if (blob is _NOT_GIVEN) == (make is None):
            raise TypeError("PendingRecord takes exactly one of blob and make")
        _init(self, field, version, deleted, problem, make, _CallMaker(failures))
        if make is None:
            _set_blob(self, blob)

    @property
    def blob(self) -> bytes:
        """The encrypted blob, made now if this is the first read.

        :raises UnencodableItemError: the item cannot be encoded (now or at an earlier read).
        """
        try:
            made: bytes = _get_blob(self, StoredRecord)
            return made
        except AttributeError:
            pass  # not made yet
        if self._failure is not None:
            raise self._failure
        maker = self._maker
        try:
            blob = maker.make_blob(self._source, self.field)
            if not isinstance(blob, bytes):
                # What a store would refuse (storebase.record_refusal), refused here instead:
                # stores do not look at a pending blob before they mean to write it.
                raise UnencodableItemError(
                    self.field, f"its blob is a {type(blob).__name__}, not bytes"
                )
        except UnencodableItemError as exc:
            _set_failure(self, exc)
            if maker.failures is not None:
                maker.failures.append(self)
            raise
        _set_blob(self, blob)
        _set_source(self, None)  # drop the item: only the blob is needed now
        return blob

    @property
    def made(self) -> bool:
        """Whether the blob has been made (read at least once, successfully)."""
        try:
            _get_blob(self, StoredRecord)
        except AttributeError:
            return False
        return True

    @property
    def failure(self) -> UnencodableItemError | None:
        """Why the blob could not be made, once a read has tried; ``None`` otherwise."""
        return self._failure

    def __repr__(self) -> str:
        if not self.made:  # a repr (a log line, a failed assertion) must not encrypt
            return (
                f"PendingRecord(field={self.field!r}, version={self.version!r}, blob=<not made>, "
                f"deleted={self.deleted!r}, problem={self.problem!r})"
            )
        return super().__repr__()

    def __reduce__(self) -> tuple[type[StoredRecord], tuple[object, ...]]:
        # Copies and pickles are plain records: the maker (which holds the cache) stays here.
        return StoredRecord, (self.field, self.version, self.blob, self.deleted, self.problem)


# StoredRecord is frozen: attrs sets its slots with ``object.__setattr__``, a lookup of the
# attribute by name each time. Calling the slot descriptors' own setters directly builds a
# pending record in about half the time (measured ~0.67 against ~1.2 us, with a closure per
# record besides), and the records stay frozen.
_new = object.__new__
_get_blob = StoredRecord.__dict__["blob"].__get__  # PendingRecord shadows ``blob`` (property)
_set_blob = StoredRecord.__dict__["blob"].__set__
_set_field = StoredRecord.__dict__["field"].__set__
_set_version = StoredRecord.__dict__["version"].__set__
_set_deleted = StoredRecord.__dict__["deleted"].__set__
_set_problem = StoredRecord.__dict__["problem"].__set__
_set_source = PendingRecord.__dict__["_source"].__set__
_set_maker = PendingRecord.__dict__["_maker"].__set__
_set_failure = PendingRecord.__dict__["_failure"].__set__


def _init(
    record: PendingRecord,
    field: str,
    version: int,
    deleted: bool,
    problem: str | None,
    source: Any,
    maker: BlobMaker,
) -> None:
    _set_field(record, field)
    _set_version(record, version)
    _set_deleted(record, deleted)
    _set_problem(record, problem)
    _set_source(record, source)
    _set_maker(record, maker)
    _set_failure(record, None)


def pending_record(
    field: str, version: int, deleted: bool, source: Any, maker: BlobMaker
) -> PendingRecord:
    """A :class:`PendingRecord` (``problem`` ``None``) whose blob is
    ``maker.make_blob(source, field)``, made on first read."""
    record: PendingRecord = _new(PendingRecord)
    _init(record, field, version, deleted, None, source, maker)
    return record


def pending_item_records(
    items: Iterable[Any], maker: BlobMaker, max_version: int
) -> tuple[list[StoredRecord], list[Any]]:
    """The pending records of ``items`` (environments, filters and tombstones), whose blobs
    ``maker`` makes; and the items whose version or id cannot be stored (not an integer from 0
    to ``max_version``, or an empty id), left out.

    Each record has the item's store field (:func:`~autoconfig_cache.records.field_name`) and
    store version (:func:`~autoconfig_cache.records.store_version`: twice the version, plus one
    for a tombstone), computed here rather than by calling those, and its slots are set here
    rather than through :func:`pending_record`: with 100,000 items these calls were 40% of the
    time of building the records, and building them a third of a put in which one item changed.
    """
    records: list[StoredRecord] = []
    invalid: list[Any] = []
    append = records.append
    new, cls, prefixes = _new, PendingRecord, FIELD_PREFIXES
    set_field, set_version, set_deleted = _set_field, _set_version, _set_deleted
    set_problem, set_source, set_maker, set_failure = (
        _set_problem,
        _set_source,
        _set_maker,
        _set_failure,
    )
    for item in items:
        version = item.version
        item_id = item.id
        # A quick test that the version and id are valid: a valid item encodes, with no check
        # beyond the codec's.
        if type(version) is int and 0 <= version <= max_version and item_id:
            deleted = isinstance(item, Tombstone)
            record = new(cls)
            set_field(record, prefixes[item.kind] + item_id)
            set_version(record, 2 * version + 1 if deleted else 2 * version)
            set_deleted(record, deleted)
            set_problem(record, None)
            set_source(record, item)
            set_maker(record, maker)
            set_failure(record, None)
            append(record)
        else:
            invalid.append(item)
    return records, invalid


def settled(record: StoredRecord) -> StoredRecord:
    """``record`` as a plain :class:`StoredRecord` (its blob made), for a store that keeps the
    record objects it is given (the memory store) rather than their bytes."""
    if type(record) is StoredRecord:
        return record
    return StoredRecord(record.field, record.version, record.blob, record.deleted, record.problem)
