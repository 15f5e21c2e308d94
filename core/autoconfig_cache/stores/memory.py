"""Built-in memory store: ``memory://`` and ``memory://NAME``.

``memory://`` gives every store object its own private, empty dictionary: nothing outlives the
object. ``memory://NAME`` shares one dictionary between every store object opened in this process
with the same NAME and cache key, for as long as the process runs (or until
:func:`forget_shared_memory_stores`). That makes it useful for tests of the cache facade and for
multi-writer tests; it is never shared between processes.

The operations are synchronous dictionary updates under a lock, so each is atomic. The lock is a
:class:`threading.Lock` rather than an :class:`asyncio.Lock` because shared state may be used from
several event loops (e.g. one per test, or one per thread), and no critical section awaits.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

import attrs

from autoconfig_cache.pending import settled
from autoconfig_cache.plugin import (
    ConfigurationError,
    RegisterStore,
    Store,
    StoreBase,
    StoredRecord,
    StoreSpec,
    hookimpl,
    is_damaged_version,
)


@attrs.define
class _MemoryData:
    """One cache key's records and the lock that makes each operation atomic."""

    records: dict[str, StoredRecord] = attrs.field(factory=dict)
    lock: threading.Lock = attrs.field(factory=threading.Lock)


_shared: dict[tuple[str, str], _MemoryData] = {}
_shared_lock = threading.Lock()


def forget_shared_memory_stores() -> None:
    """Drop the data of every named ``memory://NAME`` store in this process (for tests)."""
    with _shared_lock:
        _shared.clear()


def _shared_data(name: str, cache_key: str) -> _MemoryData:
    with _shared_lock:
        return _shared.setdefault((name, cache_key), _MemoryData())


class MemoryStore(StoreBase):
    """A store that keeps records in a dictionary of this process.

    Every operation is one synchronous step under a lock, so nothing is ever in flight: each
    checks that the store is open rather than running as a tracked task.

    :param name: ``None`` for a private store; otherwise the name under which store objects with
        the same cache key share their records.
    :param cache_key: the namespace the records live under.
    """

    #: No Relay Proxy ever reads process memory, and records (``deleted`` included) are kept as
    #: given, so the store has the capability trivially; declaring it lets the conformance kit
    #: check the memory store as the reference for stores that implement it.
    keeps_tombstones_apart = True
    store_name = "memory store"

    def __init__(self, name: str | None = None, cache_key: str = "") -> None:
        self.name = name
        self.cache_key = cache_key
        self._data = _MemoryData() if name is None else _shared_data(name, cache_key)

    @classmethod
    def from_spec(cls, spec: StoreSpec) -> MemoryStore:
        """Build a memory store from ``memory://`` or ``memory://NAME``.

        :raises ConfigurationError: when the URL carries a path after the name.
        """
        parts = urlsplit(spec.url)
        name = unquote(parts.netloc)
        if parts.path not in ("", "/"):
            raise ConfigurationError(
                f"memory store URL {spec.redacted_url!r} has a path; use memory:// for a private "
                "store or memory://NAME for one shared by name within this process"
            )
        return cls(name or None, spec.cache_key)

    def __repr__(self) -> str:
        where = f"memory://{self.name}" if self.name else "memory://"
        return f"MemoryStore({where!r}, cache_key={self.cache_key!r})"

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        """Every record under the cache key."""
        self._check_open()
        with self._data.lock:
            return list(self._data.records.values())

    @hookimpl
    async def cache_get_versions(self) -> dict[str, int]:
        """Every field under the cache key and its version."""
        self._check_open()
        with self._data.lock:
            return {field: record.version for field, record in self._data.records.items()}

    @hookimpl
    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        """Replace the records, keeping a stored version higher than the snapshot's.

        :raises PartialWriteError: naming the records refused (see ``StoreBase._refusal``),
            once the others are written; their fields keep what they held.
        """
        self._check_open()
        accepted, refused = self._split_refused(records)
        with self._data.lock:
            stored = self._data.records
            wanted = {record.field for record in records}
            stale = [field for field in stored if field not in wanted]
            # Only the records written are settled (their blobs read, which may encrypt them
            # now), and all of them before anything changes: a blob that cannot be made
            # leaves the store as it was.
            writes = [
                settled(record)
                for record in accepted
                if (current := stored.get(record.field)) is None
                or _replaceable(current.version, record.version)
                or (rewrite_unchanged and current.version == record.version)
            ]
            for field in stale:
                del stored[field]
            for record in writes:
                stored[record.field] = record
            self.records_written += len(stale) + len(writes)
        self._raise_refused("set_all", refused)

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        """Write ``record`` unless the same or a higher version is stored.

        :raises PartialWriteError: when the store refuses the record (nothing is written).
        """
        self._check_open()
        _, refused = self._split_refused([record])
        self._raise_refused("upsert", refused)
        with self._data.lock:
            current = self._data.records.get(record.field)
            if current is not None and not _replaceable(current.version, record.version):
                return False
            self._data.records[record.field] = settled(record)
            self.records_written += 1
            return True

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        """Delete ``field`` if it is stored at a version lower than ``version``."""
        self._check_open()
        with self._data.lock:
            current = self._data.records.get(field)
            if current is None or not _replaceable(current.version, version):
                return False
            del self._data.records[field]
            self.records_written += 1
            return True

    @hookimpl
    async def cache_clear(self) -> None:
        """Delete every record under the cache key."""
        self._check_open()
        with self._data.lock:
            self.records_written += len(self._data.records)
            self._data.records.clear()


def _replaceable(stored: int, version: int) -> bool:
    """The version guard: ``version`` replaces ``stored`` when higher, or when ``stored`` is
    damaged (never reached through this store's hooks, which refuse such records; kept so that
    every built-in store applies the same rule)."""
    return is_damaged_version(stored) or stored < version


_: type[Store] = MemoryStore  # mypy checks the class against the Store protocol


@hookimpl
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Register the ``memory`` scheme."""
    register(
        ["memory"],
        MemoryStore.from_spec,
        description="in-process memory; memory://NAME shares data by name within the process",
    )
