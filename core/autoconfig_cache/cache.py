"""The async cache facade: what the stream manager, the CLI and embedding applications use.

One :class:`AutoConfigCache` owns one store (a plugin object registered into the cache's own
plugin manager, so exactly one backend answers), the codec and the keys. Every operation runs
as a task the cache tracks, so :meth:`close` can cancel work in flight.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import attrs
import pluggy

from . import hookspecs
from .codec import (
    CURRENT_MODEL_VERSION,
    AesGcmEncryption,
    BuiltinMigrations,
    Codec,
    KeyDerivation,
    KeyRing,
    StorageFormat,
    parse_relay_key_derivation,
)
from .errors import (
    CodecError,
    DecryptionError,
    MalformedEnvelopeError,
    MalformedItemError,
    NewerFormatError,
    PartialWriteError,
    RefusedRecord,
    StoreClosedError,
    UnknownKindError,
    UnknownModelVersionError,
)
from .gcpause import gc_paused
from .inflight import InFlight
from .models import Environment, Filter, Item, Snapshot, Tombstone
from .pending import PendingRecord, UnencodableItemError, pending_item_records, settled
from .plugins import (
    PluginRegistry,
    check_no_store_answers,
    check_pending,
    check_store,
    get_registry,
)
from .records import ItemKind, StoredRecord, field_name, parse_field, store_version
from .refusals import StoreRefusals
from .report import LoadReport, SkippedItem, SkipReason
from .store_spec import StoreSpec
from .storebase import MAX_STORED_VERSION, is_damaged_version, shown_version
from .stores.null import NullStore
from .validation import MAX_VERSION as _MAX_ITEM_VERSION
from .validation import item_id_problem, version_problem

if TYPE_CHECKING:
    from .maintenance import KeyRotation

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The name the cache's store is registered under in the cache's plugin manager.
_STORE_PLUGIN = "store"

_SKIP_REASONS: dict[type[CodecError], SkipReason] = {
    DecryptionError: SkipReason.UNDECRYPTABLE,
    MalformedEnvelopeError: SkipReason.MALFORMED,
    MalformedItemError: SkipReason.MALFORMED,
    UnknownKindError: SkipReason.UNKNOWN_KIND,
    UnknownModelVersionError: SkipReason.UNKNOWN_MODEL_VERSION,
}

#: What encoding an item can raise because of the item itself (a number the blob header cannot
#: hold, a string UTF-8 cannot encode, nesting the JSON encoder cannot walk): such an item is
#: refused on its own. Anything else (an encryption plugin that cannot reach its KMS, say) fails
#: the whole write, which is retried.
_UNENCODABLE = (RecursionError, OverflowError, UnicodeError, struct.error, TypeError, ValueError)


class StorageCreation(enum.Enum):
    """What :meth:`AutoConfigCache.create_storage` did; the value is how the CLI reports it."""

    #: This call created the storage (the store's hook returned ``True``).
    CREATED = "created"
    #: The storage was already there; nothing was created (the hook returned ``None``).
    EXISTS = "exists"
    #: The store has nothing to create: it creates what it needs on first use (``False``, or
    #: no store implements the hook).
    NOTHING_TO_CREATE = "nothing-to-create"


@attrs.frozen
class LoadResult:
    """What :meth:`AutoConfigCache.get_all` returns: the usable snapshot and the load report."""

    snapshot: Snapshot
    report: LoadReport


@attrs.frozen
class InspectedRecord:
    """One stored record as ``autoconfig-cache cache inspect``/``verify`` see it.

    :param key_derivation: the ``relay`` key derivation that opened it (``None`` for ``v2``).
    :param written_by_newer_release: it failed only because a newer release wrote it (a model
        version or ``v2`` blob format this release does not know): never this one's to rewrite.
    """

    record: StoredRecord
    item: Item | Tombstone | None
    model_version: int | None
    key_id: str | None
    cached_at: datetime | None
    problem: SkippedItem | None
    key_derivation: KeyDerivation | None = None
    written_by_newer_release: bool = False


@attrs.define
class _LoadNotes:
    """What a load learnt beyond the snapshot: what to leave alone, rewrite, or write with."""

    newer: dict[str, StoredRecord] = attrs.Factory(dict)
    """Records written by a newer release (never rewritten by this one), by field."""
    outdated: list[str] = attrs.Factory(list)
    """Fields read through a migration or in 0.1's shape: rewritten in the current shape."""
    by_derivation: dict[KeyDerivation, list[str]] = attrs.Factory(dict)
    """``relay`` fields by the key derivation that opened them."""
    evidence: Counter[KeyDerivation] = attrs.Factory(Counter)
    """``relay`` derivations of records not written by 0.1 (what ``auto`` follows)."""


class AutoConfigCache:
    """Reads and writes AutoConfig items in one store, encrypted.

    Build one with :meth:`open` (from a store URL), with the constructor (from a store object
    and a :class:`~autoconfig_cache.codec.KeyRing`) or with :meth:`null` (caching off). Use it
    as ``async with`` or call :meth:`close`.
    """

    def __init__(
        self,
        store: object | None,
        *,
        cache_key: str,
        keys: KeyRing,
        format: StorageFormat = StorageFormat.V2,
        registry: PluginRegistry | None = None,
        scheme: str = "none",
        relay_key_derivation: KeyDerivation | None = None,
    ) -> None:
        self.scheme = scheme if store is not None else "none"
        self.format = format
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._encryption = AesGcmEncryption(keys, relay_key_derivation)
        self._pm.register(self._encryption, name="aesgcm")
        self._pm.register(BuiltinMigrations(), name="builtin-migrations")
        for name, plugin in (registry or get_registry()).cache_plugins():
            self._pm.register(plugin, name=name)
        self.store: object = store if store is not None else NullStore()
        # The contract, checked before the first call rather than as a puzzling failure
        # later: hooks are marked and complete, no hook is misspelt, exactly one store answers.
        check_store(self.store)
        self._pm.register(self.store, name=_STORE_PLUGIN)
        check_pending(self._pm)
        check_no_store_answers(self._pm, store_name=_STORE_PLUGIN)
        self.codec = Codec(
            cache_key=cache_key,
            format=format,
            hook=self._pm.hook,
            builtin_encryption=self._encryption,
        )
        self._in_flight = InFlight()
        self._refusals = StoreRefusals()
        self._needs_rewrite: set[str] = set()
        self._newer_records: dict[str, StoredRecord] = {}
        # relay format, `auto` derivation: settled by the first load (or, for a process that
        # writes without loading, by a read before its first write).
        self._relay_derivation_settled = relay_key_derivation is not None
        self._seen_derivations: Counter[KeyDerivation] = Counter()
        self._closed = False

    @classmethod
    def open(
        cls,
        store_url: str | None,
        *,
        cache_key: str,
        encryption_key: str,
        previous_encryption_keys: Sequence[str] = (),
        format: str | StorageFormat = StorageFormat.V2,
        options: Mapping[str, str] | None = None,
        registry: PluginRegistry | None = None,
        trim_encryption_key: bool = True,
        relay_key_derivation: str | KeyDerivation | None = None,
        read_only: bool = False,
    ) -> AutoConfigCache:
        """Open the cache in the store at ``store_url`` (``None`` → the null store).

        :param cache_key: the namespace (Redis hash key, DynamoDB partition key).
        :param encryption_key: the current key; the Relay Proxy uses the AutoConfig key when
            no encryption key is set, and so should the caller.
        :param previous_encryption_keys: keys that still decrypt (rotation).
        :param format: ``v2`` (default) or ``relay``.
        :param options: store settings that do not fit the URL.
        :param trim_encryption_key: ``False`` when ``encryption_key`` is the AutoConfig key,
            which the Relay Proxy uses as key material as it is. Its trimmed form, which 0.1
            used, is then kept as a previous key, so what 0.1 wrote still decrypts.
        :param relay_key_derivation: ``relay`` format: ``hkdf``, ``sha256``, or ``auto``/``None``
            (the derivation of the records already stored, else HKDF).
        :param read_only: for a cache that is only read (``cache inspect``, ``verify``,
            ``export``): the store creates nothing (no file, directory or table) and reads
            missing storage as empty (:attr:`StoreSpec.read_only`). Do not write through it.
        :raises ConfigurationError: bad key, unknown scheme (naming the extra to install), ...
        """
        registry = registry or get_registry()
        previous = tuple(previous_encryption_keys)
        if not trim_encryption_key and encryption_key.strip() != encryption_key:
            # Previous keys are trimmed: this adds the trimmed form 0.1 used, decrypt only.
            previous = (*previous, encryption_key)
        keys = KeyRing.from_strings(encryption_key, previous, trim_current=trim_encryption_key)
        storage_format = (
            format if isinstance(format, StorageFormat) else StorageFormat.parse(format)
        )
        derivation = (
            parse_relay_key_derivation(relay_key_derivation)
            if isinstance(relay_key_derivation, str)
            else relay_key_derivation
        )
        store = None
        scheme = "none"
        if store_url:
            spec = StoreSpec(
                url=store_url,
                cache_key=cache_key.strip(),
                options=dict(options or {}),
                read_only=read_only,
            )
            store = registry.open_store(spec)
            scheme = spec.scheme
        return cls(
            store,
            cache_key=cache_key,
            keys=keys,
            format=storage_format,
            registry=registry,
            scheme=scheme,
            relay_key_derivation=derivation,
        )

    @property
    def cache_key(self) -> str:
        """The namespace this cache lives under."""
        return self.codec.cache_key

    @property
    def is_null(self) -> bool:
        """True when caching is off (no store configured)."""
        return isinstance(self.store, NullStore)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    @property
    def refusals(self) -> StoreRefusals:
        """Records refused by the store (or that could not be encoded) that are still refused,
        and how many were since this cache was opened."""
        return self._refusals

    @property
    def hook(self) -> pluggy.HookRelay:
        """The cache's own hook relay (store, encryption, migration, observers)."""
        return self._pm.hook

    async def _run(self, awaitable: Awaitable[T] | None, operation: str) -> T:
        if self._closed:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise StoreClosedError()
        if awaitable is None:
            raise NotImplementedError(f"the configured store does not implement {operation}")
        return await self._in_flight.run(awaitable)

    async def _write(self, awaitable: Awaitable[T] | None, operation: str) -> T:
        try:
            return await self._run(awaitable, operation)
        except (asyncio.CancelledError, StoreClosedError):
            raise
        except Exception as exc:
            self._pm.hook.autoconfig_cache_on_write_error(operation=operation, error=exc)
            raise

    # -- reading -------------------------------------------------------------------------------

    async def get_records(self) -> list[StoredRecord]:
        """Every stored record, still encrypted."""
        return await self._run(self._pm.hook.cache_get_all(), "get_all")

    async def get_all(self) -> LoadResult:
        """Load every item; records that cannot be used are skipped and reported, never fatal.

        The next :meth:`set_all` rewrites, once, what this load found unreadable, under a
        previous key, in an older shape or under the other ``relay`` key derivation — except
        records a newer release wrote, which this one never overwrites.
        """
        result = self._take_stock(await self.get_records())
        self._pm.hook.autoconfig_cache_on_load(report=result.report)
        return result

    async def take_stock(self) -> bool:
        """Read the store to learn what the next :meth:`set_all` must rewrite, loading nothing.

        For a process that writes without a load having finished (the stream's put won the
        race against the cache read and cancelled it, or the read failed): :meth:`set_all`
        writes only items whose version the store does not hold, so records unreadable, under
        a previous key, in an older shape or under the other ``relay`` key derivation would stay
        that way, and records a newer release wrote would not be known to keep. This learns
        both, as a load does; the load hook is not called.

        :return: whether the next :meth:`set_all` rewrites every record once.
        """
        self._take_stock(await self.get_records())
        return bool(self._needs_rewrite)

    def _take_stock(self, records: Sequence[StoredRecord]) -> LoadResult:
        """Decode ``records`` and note what the next :meth:`set_all` must rewrite or keep."""
        notes = _LoadNotes()
        with gc_paused():
            result = self._decode_records(records, notes)
        self._note_relay_derivations(notes.evidence, replace=True)
        self._newer_records = notes.newer
        if notes.newer:
            logger.warning(
                "%d cached item(s) were written by a newer release of autoconfig-cache and are "
                "left as they are; upgrade this process to read them",
                len(notes.newer),
            )
        needs_rewrite = {item.field for item in result.report.skipped} - notes.newer.keys()
        needs_rewrite.update(result.report.stale_key_fields)
        needs_rewrite.update(notes.outdated)
        write_derivation = self.codec.relay_write_derivation
        for derivation, fields in notes.by_derivation.items():
            if derivation is not write_derivation:
                needs_rewrite.update(fields)
        self._needs_rewrite = needs_rewrite
        return result

    def decode_records(self, records: Sequence[StoredRecord]) -> LoadResult:
        """Decode records into a snapshot and a report (no I/O)."""
        with gc_paused():
            return self._decode_records(records)

    def _decode_records(
        self, records: Sequence[StoredRecord], notes: _LoadNotes | None = None
    ) -> LoadResult:
        environments: dict[str, Environment] = {}
        filters: dict[str, Filter] = {}
        skipped: list[SkippedItem] = []
        stale: list[str] = []
        tombstones: list[Tombstone] = []
        oldest_ms: int | None = None
        current_key = self.codec.keys.current
        decode = self.codec.decode_parts
        # Counted here and added to the notes at the end: a Counter update per record costs
        # more than the decryption's bookkeeping should (this loop runs 10,000 times a load).
        evidence: dict[KeyDerivation, int] = {}
        by_derivation: dict[KeyDerivation, list[str]] = (
            notes.by_derivation if notes is not None else {}
        )
        for record in records:
            version = record.version
            # is_damaged_version inlined (see _stored_problem, which says which problem)
            if (
                record.problem is not None
                or type(version) is not int
                or not 0 <= version <= MAX_STORED_VERSION
            ):
                problem = _stored_problem(record)
                if problem is not None:
                    logger.warning(
                        "cache item %s skipped (%s): %s",
                        record.field,
                        problem.reason,
                        problem.message,
                    )
                    skipped.append(problem)
                    continue
            try:
                item, model_version, key, cached_at_ms, derivation, legacy = decode(record)
            except CodecError as exc:
                problem = _skipped(record.field, exc)
                logger.warning(
                    "cache item %s skipped (%s): %s", record.field, problem.reason, problem.message
                )
                skipped.append(problem)
                if notes is not None and isinstance(exc, NewerFormatError):
                    notes.newer[record.field] = record
                continue
            if (legacy or model_version < CURRENT_MODEL_VERSION) and notes is not None:
                notes.outdated.append(record.field)
            if derivation is not None:
                fields = by_derivation.get(derivation)
                if fields is None:
                    fields = by_derivation[derivation] = []
                fields.append(record.field)
                if not legacy:
                    evidence[derivation] = evidence.get(derivation, 0) + 1
            if isinstance(item, Environment):
                environments[item.env_id] = item
            elif isinstance(item, Filter):
                filters[item.filter_id] = item
            else:
                tombstones.append(item)
            if key is not None and key is not current_key:
                stale.append(record.field)
            if cached_at_ms is not None and (oldest_ms is None or cached_at_ms < oldest_ms):
                oldest_ms = cached_at_ms
        if notes is not None:
            notes.evidence.update(evidence)
        report = LoadReport(
            environments=len(environments),
            filters=len(filters),
            tombstones=len(tombstones),
            skipped=tuple(skipped),
            oldest_cached_at=(
                datetime.fromtimestamp(oldest_ms / 1000, UTC) if oldest_ms is not None else None
            ),
            stale_key_fields=tuple(stale),
        )
        return LoadResult(Snapshot(environments, filters, tuple(tombstones)), report)

    def inspect_records(self, records: Sequence[StoredRecord]) -> list[InspectedRecord]:
        """Decode each record on its own, keeping the problem of those that fail (CLI).

        In the ``relay`` format with the ``auto`` derivation, what it sees also decides what
        later writes use, as a load does (``cache rotate-key`` inspects, then writes).
        """
        inspected: list[InspectedRecord] = []
        evidence: Counter[KeyDerivation] = Counter()
        for record in records:
            problem = _stored_problem(record)
            if problem is not None:
                inspected.append(InspectedRecord(record, None, None, None, None, problem))
                continue
            key_id = self.codec.key_id_of(record)
            try:
                decoded = self.codec.decode(record)
            except CodecError as exc:
                inspected.append(
                    InspectedRecord(
                        record,
                        None,
                        None,
                        key_id,
                        None,
                        _skipped(record.field, exc),
                        written_by_newer_release=isinstance(exc, NewerFormatError),
                    )
                )
                continue
            if key_id is None and decoded.key is not None:
                key_id = decoded.key.key_id_hex
            if decoded.derivation is not None and not decoded.legacy:
                evidence[decoded.derivation] += 1
            inspected.append(
                InspectedRecord(
                    record,
                    decoded.item,
                    decoded.model_version,
                    key_id,
                    decoded.cached_at,
                    None,
                    decoded.derivation,
                )
            )
        self._note_relay_derivations(evidence, replace=False)
        return inspected

    # -- the relay key derivation (auto) -------------------------------------------------------

    def _note_relay_derivations(self, evidence: Counter[KeyDerivation], *, replace: bool) -> None:
        """``auto``: write with the derivation most stored records use (HKDF on a tie or none).

        Records 0.1 wrote (SHA-256, which 0.1 always used) are not evidence: they say nothing
        about the Relay Proxy the store is shared with, and are rewritten anyway.
        """
        if self.format is not StorageFormat.RELAY:
            return
        if replace:
            self._seen_derivations = Counter(evidence)
        else:
            self._seen_derivations.update(evidence)
        seen = self._seen_derivations
        self._encryption.detected_relay_derivation = (
            (
                KeyDerivation.SHA256
                if seen[KeyDerivation.SHA256] > seen[KeyDerivation.HKDF]
                else KeyDerivation.HKDF
            )
            if seen
            else None
        )
        self._relay_derivation_settled = True

    async def _settle_relay_derivation(self, operation: str) -> None:
        """Before the first write of a process that has not loaded: read what is stored.

        A failed read fails the write (reported as the write's error): writing under a
        derivation the store's Relay Proxy cannot read would be worse than not writing.
        """
        if self._relay_derivation_settled or self.format is not StorageFormat.RELAY or self.is_null:
            return
        try:
            records = await self.get_records()
        except (asyncio.CancelledError, StoreClosedError):
            raise
        except Exception as exc:
            self._pm.hook.autoconfig_cache_on_write_error(operation=operation, error=exc)
            raise
        # Inspecting notes the derivations the stored records use (unreadable ones are no
        # evidence; a load reports them).
        self.inspect_records(records)

    # -- writing -------------------------------------------------------------------------------

    async def set_all(
        self,
        snapshot: Snapshot,
        *,
        rewrite_unchanged: bool = False,
        keep: Sequence[StoredRecord] = (),
    ) -> None:
        """Make the store hold exactly ``snapshot`` (only changed items cost encryptions and writes).

        :param rewrite_unchanged: re-encrypt items whose version did not change (key rotation).
        :param keep: stored records to keep as they are, byte for byte, beside ``snapshot``:
            records a newer release wrote, which this one can neither load nor re-encrypt
            (``cache rotate-key`` keeps them). A record whose field ``snapshot`` has is ignored.
        :raises PartialWriteError: after writing the rest, when the store refused records or
            items cannot be encoded (``refused``; each logged once and kept in
            :attr:`refusals`); what the store held for them is left as it was.
        """
        await self._settle_relay_derivation("set_all")
        failures: list[PendingRecord] = []
        with gc_paused():  # 10,000 new records and none of them garbage: see gc_paused
            records, unencodable = self._records(
                [*snapshot.items(), *snapshot.tombstones], failures
            )
        if unencodable:
            # Left out of the write, which would delete what the store holds for them: keep
            # that instead, as the store does for a record it refuses.
            keep = [*keep, *await self._stored_copies({entry.field for entry in unencodable})]
        if self._newer_records:
            # A record a newer release wrote (a model version or v2 blob format this release
            # does not know) is never replaced at the same version: the store is handed that
            # very record back, so that even a rewrite of unchanged versions (the repair below,
            # key rotation) writes its own bytes again. A higher version of the item, from the
            # stream, is newer data and replaces it as usual; a lower one never does (the
            # store's version guard). upsert() and delete() need nothing: stores never replace
            # a record with one of the same version there.
            records = [self._keep_newer(record) for record in records]
        if keep:
            fields = {record.field for record in records}
            records.extend(record for record in keep if record.field not in fields)
        # Stores skip records whose version they already hold. A record that failed to load
        # (tampered, truncated, written under a key since removed), that is still under a
        # previous key, in an older shape or under the other relay key derivation would then
        # stay that way until the item changes: rewrite everything once.
        repair = bool(self._needs_rewrite) and not rewrite_unchanged
        if repair:
            logger.info(
                "rewriting every item once: %d stored item(s) were unreadable, under a previous "
                "key or in an older format at the last load",
                len(self._needs_rewrite),
            )
        try:
            await self._write_snapshot(
                records, rewrite_unchanged or repair, failures=failures, unencodable=unencodable
            )
        except PartialWriteError as exc:
            self._refusals.replace([*unencodable, *exc.refused])
            if exc.only_refused:
                self._needs_rewrite.clear()  # the repair reached every record it could
            if not unencodable:
                raise
            raise PartialWriteError(
                "set_all", exc.retryable_fields, refused=[*unencodable, *exc.refused]
            ) from exc
        self._refusals.replace(unencodable)
        self._needs_rewrite.clear()
        if unencodable:
            raise PartialWriteError("set_all", refused=unencodable)

    async def _write_snapshot(
        self,
        records: list[StoredRecord],
        rewrite_unchanged: bool,
        *,
        failures: list[PendingRecord],
        unencodable: list[RefusedRecord],
    ) -> None:
        """``cache_set_all`` of ``records``, whose blobs are made as the store reads them.

        An item found unencodable there (it lands in ``failures``) is added to ``unencodable``
        and the write is redone without it, keeping what the store holds for its field: the
        store may have stopped part way, or left the item out, and a ``cache_set_all`` redone
        completes it (it makes the store hold the snapshot, whatever it held). Each round
        drops at least one record, so this ends; it is the rare path.
        """
        while True:
            seen = len(failures)
            try:
                await self._run(
                    self._pm.hook.cache_set_all(
                        records=records, rewrite_unchanged=rewrite_unchanged
                    ),
                    "set_all",
                )
            except (asyncio.CancelledError, StoreClosedError):
                raise
            except Exception as exc:
                if len(failures) == seen:  # the store's own failure, not an item's
                    self._pm.hook.autoconfig_cache_on_write_error(operation="set_all", error=exc)
                    raise
            if len(failures) == seen:
                return
            found = failures[seen:]
            unencodable.extend(_refused_record(record, _failure_reason(record)) for record in found)
            gone = {record.field for record in found}
            records = [record for record in records if record.field not in gone]
            records.extend(await self._stored_copies(gone))

    def _records(
        self, items: Iterable[Item | Tombstone], failures: list[PendingRecord]
    ) -> tuple[list[StoredRecord], list[RefusedRecord]]:
        """The records of ``items``, and those refused before reaching the store.

        A record's blob is encoded and encrypted when it is first read (:class:`PendingRecord`):
        a store reads the blobs of the records it writes, so an item whose version the store
        already holds costs no encryption. One that turns out not to be encodable then adds
        its record to ``failures``.
        """
        # One maker for the whole write (one time, whenever each blob is made): a put builds a
        # record per item, most of them never written, so no per-record closure.
        maker = _ItemBlobs(self, int(time.time() * 1000), failures)
        records, invalid = pending_item_records(items, maker, _MAX_ITEM_VERSION)
        refused = [_refused_item(item, _invalid_item(item)) for item in invalid]
        return records, refused

    def _blob(self, item: Item | Tombstone, field: str, cached_at_ms: int) -> bytes:
        """The encrypted blob of ``item`` (whose store field is ``field``).

        :raises UnencodableItemError: the item itself cannot be encoded (see ``_UNENCODABLE``).
        """
        try:
            return self.codec.encode(item, cached_at_ms=cached_at_ms).blob
        except _UNENCODABLE as exc:
            raise UnencodableItemError(field, _encode_failure(exc)) from None

    def _encode_one(self, item: Item | Tombstone, operation: str) -> StoredRecord:
        """The record of ``item``, encoded now; raises :class:`PartialWriteError` when it
        cannot be made."""
        records, refused = self._records([item], [])
        if records:
            try:
                return settled(records[0])
            except UnencodableItemError as exc:
                refused = [_refused_record(records[0], exc.reason)]
        self._refusals.note(refused)
        raise PartialWriteError(operation, refused=refused)

    async def _stored_copies(self, fields: set[str]) -> list[StoredRecord]:
        """The stored records of ``fields`` that are records this project wrote (to keep)."""
        return [
            record
            for record in await self.get_records()
            if record.field in fields
            and record.problem is None
            and not is_damaged_version(record.version)
        ]

    async def _write_record(self, record: StoredRecord, operation: str) -> bool:
        """``cache_upsert`` of one record, unless the store refused it at this very version."""
        if self._refusals.is_refused(record):
            return False  # the same refusal again: not retried until the version changes
        try:
            written: bool = await self._write(self._pm.hook.cache_upsert(record=record), operation)
        except PartialWriteError as exc:
            self._refusals.note(exc.refused)
            raise
        self._refusals.resolved([record.field])
        return written

    def _keep_newer(self, record: StoredRecord) -> StoredRecord:
        """The stored record a newer release wrote for ``record``'s field at its version, if any."""
        kept = self._newer_records.get(record.field)
        return kept if kept is not None and kept.version == record.version else record

    async def upsert(self, item: Item) -> bool:
        """Store ``item`` unless the store holds the same or a newer version.

        :return: ``True`` if written; ``False`` also when the store refused this very record
            before (it is not sent again until its version changes).
        :raises PartialWriteError: the store refused the record, or it cannot be encoded
            (``refused`` says why; logged once).
        """
        await self._settle_relay_derivation("upsert")
        return await self._write_record(self._encode_one(item, "upsert"), "upsert")

    async def delete(self, kind: ItemKind, item_id: str, version: int) -> bool:
        """Record that an item was deleted at ``version``, unless the store holds a newer state.

        The item is replaced by a tombstone rather than removed, so that a late, older update
        from another process sharing the cache key cannot bring it back.

        :return: ``True`` if the tombstone was written.
        """
        await self._settle_relay_derivation("delete")
        record = self._encode_one(Tombstone(kind, item_id, version), "delete")
        return await self._write_record(record, "delete")

    async def purge(self, kind: ItemKind, item_id: str, version: int) -> bool:
        """Remove an item's record (item or tombstone) outright, if stored below ``version``.

        Unlike :meth:`delete` it leaves nothing behind; use it to drop tombstones nobody needs.
        """
        purged: bool = await self._write(
            self._pm.hook.cache_delete(
                field=field_name(kind, item_id), version=store_version(version, deleted=True) + 1
            ),
            "purge",
        )
        return purged

    async def clear(self) -> None:
        """Delete every item under this cache key."""
        await self._write(self._pm.hook.cache_clear(), "clear")

    async def create_storage(self) -> StorageCreation:
        """Create the store's backing storage, keeping what exists; says what it did."""
        awaitable = self._pm.hook.cache_create_storage()
        if awaitable is None:
            return StorageCreation.NOTHING_TO_CREATE
        created: bool | None = await self._run(awaitable, "create_storage")
        if created is None:
            return StorageCreation.EXISTS
        return StorageCreation.CREATED if created else StorageCreation.NOTHING_TO_CREATE

    # -- lifecycle -----------------------------------------------------------------------------

    async def rotate_keys(self, *, drop_undecryptable: bool = False) -> KeyRotation:
        """Re-encrypt every stored record under the current key (``cache rotate-key``).

        Everything is decrypted first; nothing is changed when a record cannot be, unless
        ``drop_undecryptable`` (see :mod:`autoconfig_cache.maintenance`).

        :raises UndecryptableRecordsError: records no configured key decrypts.
        :raises NewerRecordsError: records a newer release wrote.
        """
        from .maintenance import rotate_keys

        return await rotate_keys(self, drop_undecryptable=drop_undecryptable)

    async def close(self) -> None:
        """Cancel operations in flight and close the store. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        await self._in_flight.cancel_all()
        awaitable = self._pm.hook.cache_close()
        if awaitable is not None:
            await awaitable

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @classmethod
    def null(
        cls, *, cache_key: str = "autoconfig", encryption_key: str = "unused"
    ) -> AutoConfigCache:
        """A cache with caching off: reads are empty, writes are discarded."""
        return cls(None, cache_key=cache_key, keys=KeyRing.from_strings(encryption_key))


class _ItemBlobs:
    """The :class:`~autoconfig_cache.pending.BlobMaker` of the records of one write: the blob
    of an item is made by :meth:`AutoConfigCache._blob`, at one ``cached_at`` time."""

    __slots__ = ("_cache", "_cached_at_ms", "failures")

    def __init__(
        self, cache: AutoConfigCache, cached_at_ms: int, failures: list[PendingRecord]
    ) -> None:
        self._cache = cache
        self._cached_at_ms = cached_at_ms
        self.failures: list[PendingRecord] | None = failures

    def make_blob(self, source: Item | Tombstone, field: str) -> bytes:
        return self._cache._blob(source, field, self._cached_at_ms)


def _skipped(field: str, exc: CodecError) -> SkippedItem:
    if parse_field(field) is None:
        reason = SkipReason.FOREIGN_FIELD
    else:
        # Along the class hierarchy, so that a plugin's subclass of DecryptionError (say)
        # is reported as what it is.
        reason = next(
            (_SKIP_REASONS[cls] for cls in type(exc).__mro__ if cls in _SKIP_REASONS),
            SkipReason.MALFORMED,
        )
    return SkippedItem(field=field, reason=reason, message=str(exc))


def _stored_problem(record: StoredRecord) -> SkippedItem | None:
    """Why ``record`` is skipped before decoding: the store flagged it as foreign data, or its
    version is damaged (the guards treat such a version as unknown, so a write replaces it)."""
    if record.problem is not None:
        return SkippedItem(record.field, SkipReason.FOREIGN_DATA, record.problem)
    if is_damaged_version(record.version):
        return SkippedItem(
            record.field,
            SkipReason.INVALID_VERSION,
            f"the stored version, {shown_version(record.version)}, is outside "
            f"0..{MAX_STORED_VERSION}; the next write of the item replaces it",
        )
    return None


def _invalid_item(item: Item | Tombstone) -> str:
    """Why ``item`` (which failed the quick test of ``AutoConfigCache._records``) is refused."""
    problem = version_problem(item.version)
    if problem is not None:
        return f"its version {problem}"
    return f"its id is invalid: {item_id_problem(item.id) or 'empty'}"


def _encode_failure(exc: BaseException) -> str:
    # The exception's message names a type, a character or a limit, never a value's text; cut
    # all the same, since it is logged.
    return f"it cannot be encoded ({type(exc).__name__}: {str(exc)[:200]})"


def _refused_record(record: StoredRecord, reason: str) -> RefusedRecord:
    """The refusal of the item behind ``record`` (what :func:`_refused_item` gives for it)."""
    return RefusedRecord(record.field, record.version, reason, record.deleted)


def _failure_reason(record: PendingRecord) -> str:
    failure = record.failure
    assert failure is not None  # only records that failed are in the failures list
    return failure.reason


def _refused_item(item: Item | Tombstone, reason: str) -> RefusedRecord:
    deleted = isinstance(item, Tombstone)
    version = item.version
    return RefusedRecord(
        field_name(item.kind, item.id),
        store_version(version, deleted=deleted) if type(version) is int else 0,
        reason,
        deleted,
    )
