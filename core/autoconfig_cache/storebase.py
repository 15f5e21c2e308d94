"""The lifecycle every store shares, and the two seams the conformance kit uses.

Import it from :mod:`autoconfig_cache.plugin`. A store subclasses :class:`StoreBase`, runs each
operation through :meth:`StoreBase._track`, and releases its connections in
:meth:`StoreBase._release`; :meth:`StoreBase.cache_close` does the rest: it marks the store
closed, cancels the operations in flight, waits until they have unwound, then releases. After
that every tracked operation raises :class:`~autoconfig_cache.errors.StoreClosedError`.

The state lives in an object created on first use, so a subclass need not call
``super().__init__()`` (a ``__slots__`` subclass must leave room for ``__dict__``).

It also holds what every store checks about the records it is given and the data it reads:

* a record the store cannot hold (:meth:`StoreBase._refusal`: a version outside
  ``0..MAX_STORED_VERSION``, a field that is not UTF-8 text, a blob that is not bytes, plus the
  backend's own limits a subclass adds) is *refused*: the store writes the others, leaves what
  it held for that field as it was, and then raises
  :class:`~autoconfig_cache.errors.PartialWriteError` whose ``refused`` names it;
* a stored version that is not an integer in that range (:func:`is_damaged_version`) is damaged:
  the version guards treat it as unknown, so the next write of the item replaces it;
* something a store finds in its place that is not a record (a value of the wrong type) comes
  back from ``cache_get_all`` as :func:`foreign_record`, which the core reports and skips.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import ClassVar, TypeVar

from .errors import PartialWriteError, RefusedRecord, StoreClosedError
from .hookspecs import hookimpl
from .inflight import InFlight
from .pending import PendingRecord
from .records import StoredRecord, store_version
from .validation import MAX_VERSION

__all__ = [
    "MAX_STORED_VERSION",
    "StoreBase",
    "foreign_record",
    "is_damaged_version",
    "record_refusal",
    "shown_field",
    "shown_version",
]

T = TypeVar("T")

#: The highest version a store is ever asked to hold: the tombstone of the highest valid item
#: version (:data:`autoconfig_cache.validation.MAX_VERSION`, 2**53 - 1), i.e. 2**54 - 1.
MAX_STORED_VERSION = store_version(MAX_VERSION, deleted=True)


def is_damaged_version(version: object) -> bool:
    """Whether a version read from a store is not one this project writes: not an integer (a
    bool is not one), or outside ``0..MAX_STORED_VERSION``. Version guards treat such a stored
    version as unknown, so that one damaged number cannot block an item's updates for good."""
    return type(version) is not int or not 0 <= version <= MAX_STORED_VERSION


def record_refusal(record: StoredRecord) -> str | None:
    """Why no store should hold ``record``, or ``None``: a version outside
    ``0..MAX_STORED_VERSION``, a field that is empty or not UTF-8 text, a blob that is not bytes.

    The core never builds such a record from a valid item; this catches one that comes from
    elsewhere (a plugin, a bug) before it reaches a backend that would fail a whole batch on it.
    """
    if is_damaged_version(record.version):
        return f"its version ({shown_version(record.version)}) is outside 0..{MAX_STORED_VERSION}"
    if not isinstance(record.field, str) or not record.field:
        return "its field is empty or not text"
    try:
        record.field.encode("utf-8")
    except UnicodeEncodeError:
        return "its field holds a lone surrogate, which UTF-8 cannot encode"
    # A pending blob is not made here (that would encrypt every record of a set_all, written
    # or not): it is bytes once made, or the core refuses the item itself.
    if not isinstance(record, PendingRecord) and not isinstance(record.blob, bytes):
        return f"its blob is a {type(record.blob).__name__}, not bytes"
    return None


def shown_version(version: object) -> str:
    """A version for a message: the number itself, or its size when it is huge (its digits would
    flood a log line, and past 4,300 digits ``str()`` raises), or the type of a non-integer."""
    if type(version) is int:
        if version.bit_length() > 100:
            return f"a number of about {int(version.bit_length() * 0.30103) + 1} digits"
        return str(version)
    if isinstance(version, float):
        return repr(version)
    return f"a {type(version).__name__}"


def shown_field(raw: object) -> str:
    """A field name read from a store, as text a report and a terminal can show: itself when it
    is valid UTF-8 text, else a description (``<binary field b'env:a'>``, ``<NULL field>``)."""
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            # Field names that are not UTF-8 arrive decoded with surrogateescape (Redis, SQLite).
            try:
                original = raw.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                original = raw.encode("utf-8", "surrogatepass")
            return f"<field not UTF-8: {original!r}>"
        return raw
    if raw is None:
        return "<NULL field>"
    if isinstance(raw, bytes | bytearray | memoryview):
        return f"<binary field {bytes(raw)[:100]!r}>"
    return f"<{type(raw).__name__} field {raw!r}>"


def foreign_record(field: object, problem: str, *, deleted: bool = False) -> StoredRecord:
    """What ``cache_get_all`` returns for something in a record's place that is not one (a
    value of the wrong type, a version that is not a number): the core skips it and reports
    ``problem`` under the field as :func:`shown_field` shows it.

    :param field: the field name as the backend returned it (any type).
    :param problem: what is wrong, e.g. ``"the blob is TEXT, not BLOB"``; never the value of a
        secret (a blob's content is not shown).
    """
    return StoredRecord(shown_field(field), 0, b"", deleted=deleted, problem=problem)


class _Lifecycle:
    """The closed flag (visible to worker threads) and the operations in flight."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.in_flight = InFlight()


class StoreBase:
    """Base class of a store: tracked operations, cancel on close, idempotent close.

    Subclasses set :attr:`cache_key`, implement the ``cache_*`` store hooks with
    ``@hookimpl`` (``cache_get_all``, ``cache_set_all``, ``cache_upsert``, ``cache_delete``,
    ``cache_clear``; ``cache_create_storage`` if they have storage to create) and override
    :meth:`_release` to drop their connections. ``cache_close`` is provided.
    """

    #: The namespace the store's records live under (set by the subclass, usually from
    #: ``StoreSpec.cache_key``).
    cache_key: str

    #: How the store names itself in :class:`StoreClosedError` ("the redis store is closed").
    store_name: ClassVar[str] = "store"

    #: Records the store actually wrote or deleted, summed over its operations (the write-count
    #: probe the conformance kit reads to check that ``cache_set_all`` costs O(changed)). A
    #: store that does not maintain it sets :attr:`supports_write_probe` to ``False``.
    records_written: int = 0
    #: Whether :attr:`records_written` is maintained (the kit skips, visibly, when not).
    supports_write_probe: ClassVar[bool] = True

    #: Seconds between two audits of the store by a running instance when
    #: ``AUTO_CONFIG_CACHE_AUDIT_INTERVAL`` is not set (see :mod:`autoconfig_cache.audit`). An
    #: audit reads the stored versions (``cache_get_versions``, else every record); a store
    #: whose reads are billed (DynamoDB) declares a longer interval, from its read cost.
    audit_interval_default: ClassVar[float] = 30.0

    @property
    def _lifecycle(self) -> _Lifecycle:
        state: _Lifecycle | None = self.__dict__.get("_store_lifecycle")
        if state is None:
            state = self.__dict__.setdefault("_store_lifecycle", _Lifecycle())
        return state

    @property
    def closed(self) -> bool:
        """True once :meth:`cache_close` has started. Safe to read from worker threads."""
        return self._lifecycle.closed.is_set()

    def _wait_closed(self, timeout: float) -> bool:
        """Block (a worker thread) up to ``timeout`` seconds or until close; True if closed."""
        return self._lifecycle.closed.wait(timeout)

    def _check_open(self) -> None:
        """Raise :class:`StoreClosedError` if the store is closed (for steps between awaits)."""
        if self.closed:
            raise StoreClosedError(self.store_name)

    async def _track(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` as a task that :meth:`cache_close` cancels.

        :raises StoreClosedError: when the store is closed before, during or as the operation
            ends (a close that interrupts it is reported as such, even when the client library
            swallowed the cancellation and completed anyway).
        :raises asyncio.CancelledError: when the caller itself is cancelled.
        """
        state = self._lifecycle
        if state.closed.is_set():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never awaited: close it so no warning is logged
            raise StoreClosedError(self.store_name)
        try:
            result = await state.in_flight.run(awaitable)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            # Cancelled by close rather than by our caller: say so with the typed error.
            if state.closed.is_set() and not (current is not None and current.cancelling()):
                raise StoreClosedError(self.store_name) from None
            raise
        if state.closed.is_set():
            raise StoreClosedError(self.store_name)
        return result

    async def _between_read_and_write(self, field: str | None) -> None:
        """Awaited by a store whose write is a client-side read-then-write, between the two.

        It does nothing; the conformance kit replaces it on an instance to hold the store there
        while another writer changes the data, which proves the write's guard.

        :param field: the field being written, or ``None`` for a whole-snapshot ``set_all``.
        """

    def _refusal(self, record: StoredRecord) -> str | None:
        """Why this store cannot hold ``record``, or ``None``. The default is
        :func:`record_refusal`; a subclass adds its backend's limits (and calls this)."""
        return record_refusal(record)

    def _split_refused(
        self,
        records: Iterable[StoredRecord],
        refusal: Callable[[StoredRecord], str | None] | None = None,
    ) -> tuple[list[StoredRecord], list[RefusedRecord]]:
        """``records`` the store can hold, and those it refuses (with :meth:`_refusal`'s reason).

        A refused record is not written and its field is left as it was: a ``cache_set_all``
        keeps it among the fields it must not delete.

        :param refusal: another check than :meth:`_refusal`, e.g. one that does not read the
            blob, for a ``cache_set_all`` that checks the blobs only of the records it writes
            (reading a blob the core has not made yet costs an encryption)."""
        check = self._refusal if refusal is None else refusal
        accepted: list[StoredRecord] = []
        refused: list[RefusedRecord] = []
        for record in records:
            reason = check(record)
            if reason is None:
                accepted.append(record)
            else:
                refused.append(RefusedRecord(record.field, record.version, reason, record.deleted))
        return accepted, refused

    def _raise_refused(self, operation: str, refused: Sequence[RefusedRecord]) -> None:
        """Raise :class:`PartialWriteError` naming ``refused``, if any: called once the other
        records of ``operation`` are written."""
        if refused:
            raise PartialWriteError(f"{self.store_name} {operation}", refused=refused)

    async def _release(self) -> None:
        """Drop connections, pools and threads. Called once, by :meth:`cache_close`, after the
        operations in flight have been cancelled and have unwound. Must not raise."""

    @hookimpl
    async def cache_create_storage(self) -> bool | None:
        """Nothing to create: ``False``. A store with tables or files to create overrides it."""
        return False

    @hookimpl
    async def cache_close(self) -> None:
        """Cancel operations in flight, wait for them to unwind, release. Idempotent."""
        state = self._lifecycle
        if state.closed.is_set():
            return
        state.closed.set()
        await state.in_flight.cancel_all()
        await self._release()
