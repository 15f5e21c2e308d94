"""Anti-entropy: a running instance checks, on a schedule, that the store holds what it holds in
memory, and repairs what the store lost.

Without it a store emptied while the stream is quiet (``cache clear``, an operator's ``DEL``,
Redis restarted without persistence) stays empty until the next stream event, and an instance
started during a LaunchDarkly outage in that window finds no cache.

One audit, cheap first:

1. **Versions.** The expected state is memory's: every item and tombstone the stream manager
   holds, at its stored version (:func:`~autoconfig_cache.records.store_version`), minus records
   the store refuses at that version. The store is asked for its fields and stored versions only,
   through the optional ``cache_get_versions`` hook (no blobs read; a store without it answers
   with ``cache_get_all``). :func:`compare_versions` sorts each field: in step; *ahead* (the
   store holds a newer version: another instance is ahead, left alone); *unversioned* (stored
   version 0, what a Relay Proxy writes: present, not compared); *unknown* (a field memory does
   not hold: left alone); or *suspect*: missing, older, or with a damaged version number.
2. **Records**, only when something is suspect. An empty store is rewritten whole from memory
   (one ``set_all``, the write the stream manager already uses to re-synchronise a store). Else
   the full records are read and :func:`classify` judges each suspect one
   (:func:`judge_record`): missing, older or damaged *under a key and format this instance
   knows* is repaired with a version-guarded ``upsert`` of memory's state; a record under a key
   id this instance does not hold, or in a newer format, is **never** overwritten (another
   instance mid-rotation or mid-upgrade, or a Relay Proxy sharing the store, wrote it): it is
   reported instead.

Writes go through the stream manager (:class:`Repair`), which takes its writer's lock so that a
repair and the stream's writes cannot interleave: memory is read under that lock, so a repair
never writes back an item a stream ``put`` has just removed.

Schedule: the first audit runs one interval after the instance is ready (from the cache or the
stream), then every interval, each wait drawn from ``interval x uniform(0.8, 1.2)`` so that the
instances sharing a store do not all audit, and repair, at the same moment. Duplicate repairs
are harmless anyway: the version guards make the second writer's upserts no-ops.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import attrs

from .errors import CodecError, DecryptionError, NewerFormatError, RefusedRecord
from .models import Snapshot, Tombstone
from .records import StoredRecord, field_name, store_version
from .storebase import MAX_STORED_VERSION, is_damaged_version

if TYPE_CHECKING:
    from .cache import AutoConfigCache
    from .codec import Codec

logger = logging.getLogger(__name__)

#: The audit interval of a store that declares none (``audit_interval_default``), in seconds.
DEFAULT_AUDIT_INTERVAL = 30.0
#: Each wait is the interval times a factor drawn uniformly from this range.
JITTER = (0.8, 1.2)
#: At most this many foreign records are listed in the status (all are counted).
FOREIGN_SHOWN = 100


class AuditResult(enum.StrEnum):
    """How an audit ended."""

    OK = "ok"
    """The store held what memory holds (or only what the audit may not touch)."""
    REPAIRED = "repaired"
    """The store had lost records and the audit wrote them again."""
    FAILED = "failed"
    """The store could not be read or written; the next audit tries again."""


class Problem(enum.StrEnum):
    """What the audit found wrong with one field of the store."""

    MISSING = "missing"
    OLDER = "older"
    DAMAGED = "damaged"
    FOREIGN = "foreign"


@attrs.frozen
class ForeignRecord:
    """A stored record the audit left alone: under a key or format this instance does not know."""

    field: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """``{"field", "reason"}`` for ``/status``."""
        return {"field": self.field, "reason": self.reason}


@attrs.frozen
class AuditFindings:
    """What one audit found, by kind (each a number of records).

    ``missing``, ``older`` and ``damaged`` are repaired; ``foreign`` records are reported and
    left alone; ``ahead`` (a newer version than memory's) and ``unknown`` (a field memory does
    not hold) are left alone: another writer is ahead of this instance.
    """

    missing: int = 0
    older: int = 0
    damaged: int = 0
    foreign: int = 0
    ahead: int = 0
    unknown: int = 0

    @property
    def repairable(self) -> int:
        """Records the audit repairs: missing, older and damaged."""
        return self.missing + self.older + self.damaged

    def to_json(self) -> dict[str, int]:
        """The counts by kind, for ``/status``."""
        return attrs.asdict(self)


@attrs.frozen
class VersionDiff:
    """The cheap comparison of memory's versions with the store's (:func:`compare_versions`).

    :param suspects: fields whose record must be read: missing, older or with a damaged version.
    :param ahead: fields the store holds at a higher version than memory.
    :param unknown: fields the store holds and memory does not.
    """

    suspects: Mapping[str, Problem]
    ahead: int = 0
    unknown: int = 0


@attrs.frozen
class RecordVerdict:
    """What :func:`judge_record` made of one stored record.

    :param problem: ``DAMAGED`` (this instance's to repair), ``FOREIGN`` (not this instance's
        to overwrite) or ``None`` (a readable record).
    :param content_version: the stored version of the item or tombstone the record holds, when
        readable.
    :param reason: why it is damaged or foreign, in words (no secret in it).
    """

    problem: Problem | None
    content_version: int | None = None
    reason: str = ""


@attrs.frozen
class Classification:
    """What the full read found among the suspects (:func:`classify`)."""

    repair: tuple[str, ...]
    findings: AuditFindings
    foreign: tuple[ForeignRecord, ...] = ()


@attrs.frozen
class AuditStatus:
    """A point-in-time view of the audits, for ``/status`` and ``/metrics``. No secrets in it.

    :param interval_seconds: the interval between audits; ``0`` when auditing is off.
    :param results: audits run since the start, by result.
    :param last_audit_at: when the last audit ended (``None``: none yet).
    :param last_result: how it ended.
    :param findings: what it found.
    :param repaired: records it wrote.
    :param repaired_total: records written by every audit since the start.
    :param last_error: the last failure (kept after a later success), e.g. the store's error.
    :param foreign: the records the last audit left alone as foreign (at most
        :data:`FOREIGN_SHOWN`).
    """

    interval_seconds: float
    results: Mapping[AuditResult, int] = attrs.field(factory=dict)
    last_audit_at: datetime | None = None
    last_result: AuditResult | None = None
    findings: AuditFindings = AuditFindings()
    repaired: int = 0
    repaired_total: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    foreign: tuple[ForeignRecord, ...] = ()

    @property
    def audits(self) -> int:
        """Audits run since the start."""
        return sum(self.results.values())


class Repair(Protocol):
    """Writes memory's state for the fields an audit found lost (the stream manager does it).

    :param fields: the fields to write (their item or tombstone as memory holds it now); ``None``
        when the store was found empty: write the whole snapshot (``set_all``).
    :return: the records written, or ``None`` when the write was skipped because the instance's
        own writes are pending (queued writes, or a re-synchronisation of the whole store).
    :raises Exception: what the store raised; the caller records the audit as failed.
    """

    def __call__(self, fields: Sequence[str] | None) -> Awaitable[int | None]: ...


# -- the comparison (pure) ---------------------------------------------------------------------


def expected_versions(snapshot: Snapshot, refused: Iterable[RefusedRecord] = ()) -> dict[str, int]:
    """Memory's state as the store should hold it: field -> stored version, items and
    tombstones, leaving out records the store refused at that very version (it would refuse
    them again; they are reported as refused already)."""
    expected: dict[str, int] = {}
    for item in snapshot.items():
        expected[field_name(item.kind, item.id)] = store_version(item.version)
    for tombstone in snapshot.tombstones:
        expected[field_name(tombstone.kind, tombstone.item_id)] = store_version(
            tombstone.version, deleted=True
        )
    for entry in refused:
        if expected.get(entry.field) == entry.version:
            del expected[entry.field]
    return expected


def compare_versions(expected: Mapping[str, int], stored: Mapping[str, int]) -> VersionDiff:
    """Sort the fields of memory (``expected``) and of the store (``stored``, field -> version
    as ``cache_get_versions`` gives it) without reading a record.

    A stored version of 0 when memory's is not 0 is what a store reports for a record whose
    version it does not know (a Relay Proxy keeps none): the record is there, and the cheap
    comparison cannot say more, so it is not a suspect.
    """
    suspects: dict[str, Problem] = {}
    ahead = 0
    for field, version in expected.items():
        held = stored.get(field)
        if held is None:
            suspects[field] = Problem.MISSING
        elif is_damaged_version(held):
            suspects[field] = Problem.DAMAGED
        elif held == version or (held == 0 and version != 0):
            continue
        elif held < version:
            suspects[field] = Problem.OLDER
        else:
            ahead += 1
    unknown = sum(1 for field in stored if field not in expected)
    return VersionDiff(suspects, ahead, unknown)


def judge_record(record: StoredRecord, codec: Codec) -> RecordVerdict:
    """Whether ``record`` is readable, damaged (this instance's to repair) or foreign.

    Damaged means this instance can tell the record is its own kind: something that is not a
    record at all (a value of the wrong type), a version number outside the valid range, a
    blob that authenticates under none of its keys although its header names one of them
    (tampered, truncated, moved), or a blob its key opened whose content is malformed. Foreign
    means it cannot: a blob under a key id it does not hold, one it cannot attribute to a key
    (the ``relay`` format carries no key id), or one a newer release wrote.
    """
    if record.problem is not None:
        return RecordVerdict(Problem.DAMAGED, reason=record.problem)
    try:
        decoded = codec.decode(record)
    except NewerFormatError as exc:
        return RecordVerdict(Problem.FOREIGN, reason=f"written by a newer release: {exc}")
    except DecryptionError as exc:
        if is_damaged_version(record.version) or _under_known_key(record, codec):
            return RecordVerdict(Problem.DAMAGED, reason=str(exc))
        return RecordVerdict(
            Problem.FOREIGN, reason=f"not readable with this instance's keys: {exc}"
        )
    except CodecError as exc:
        # Decrypted (only DecryptionError comes before that), so written under a known key.
        return RecordVerdict(Problem.DAMAGED, reason=str(exc))
    item = decoded.item
    content = store_version(item.version, deleted=isinstance(item, Tombstone))
    if is_damaged_version(record.version):
        return RecordVerdict(
            Problem.DAMAGED, content, f"its stored version is outside 0..{MAX_STORED_VERSION}"
        )
    return RecordVerdict(None, content)


def classify(
    expected: Mapping[str, int],
    suspects: Iterable[str],
    records: Mapping[str, StoredRecord],
    judge: Callable[[StoredRecord], RecordVerdict],
) -> Classification:
    """Judge the ``suspects`` of :func:`compare_versions` on the full records just read.

    Each suspect is sorted again on the fresh read (another writer may have repaired it since
    the versions were read), then by its content: what is missing, older or damaged is to
    repair; what is foreign is reported; what is ahead is left alone.
    """
    counts = dict.fromkeys(("missing", "older", "damaged", "ahead"), 0)
    repair: list[str] = []
    foreign: list[ForeignRecord] = []
    for field in suspects:
        wanted = expected[field]
        record = records.get(field)
        if record is None:
            counts["missing"] += 1
            repair.append(field)
            continue
        held = record.version
        if record.problem is None and not is_damaged_version(held):
            if held > wanted:
                counts["ahead"] += 1
                continue
            if held == wanted or (held == 0 and wanted != 0):
                continue  # repaired meanwhile, or of unknown version: as compare_versions
        verdict = judge(record)
        if verdict.problem is Problem.FOREIGN:
            foreign.append(ForeignRecord(field, verdict.reason))
            continue
        if verdict.problem is Problem.DAMAGED:
            counts["damaged"] += 1
            repair.append(field)
            continue
        content = verdict.content_version
        assert content is not None  # a readable record has a content version
        if content > wanted:
            counts["ahead"] += 1
            continue
        # Older content, or the same content under a stored version that lags behind it.
        counts["older"] += 1
        repair.append(field)
    findings = AuditFindings(**counts, foreign=len(foreign))
    return Classification(tuple(repair), findings, tuple(foreign))


def _under_known_key(record: StoredRecord, codec: Codec) -> bool:
    """Whether ``record``'s ``v2`` header names a key this instance holds."""
    key_id = codec.key_id_of(record)
    return key_id is not None and codec.keys.by_id(bytes.fromhex(key_id)) is not None


# -- the store side ----------------------------------------------------------------------------


async def stored_versions(cache: AutoConfigCache) -> dict[str, int]:
    """Every stored field and its version: the store's ``cache_get_versions`` when it has the
    hook (no blob read), else the records of ``cache_get_all``."""
    awaitable = cache.hook.cache_get_versions()
    if awaitable is None:
        return {record.field: record.version for record in await cache.get_records()}
    versions: Mapping[str, int] = await awaitable
    return dict(versions)


def default_interval(cache: AutoConfigCache) -> float:
    """The audit interval when none is configured: what the store declares
    (``audit_interval_default``), else :data:`DEFAULT_AUDIT_INTERVAL`; 0 (off) without a store."""
    if cache.is_null:
        return 0.0
    declared = getattr(cache.store, "audit_interval_default", DEFAULT_AUDIT_INTERVAL)
    if isinstance(declared, bool) or not isinstance(declared, int | float):
        return DEFAULT_AUDIT_INTERVAL
    if not math.isfinite(declared) or declared < 0:
        return DEFAULT_AUDIT_INTERVAL
    return float(declared)


def next_delay(interval: float, rand: Callable[[float, float], float] = random.uniform) -> float:
    """The wait before the next audit: ``interval`` times a factor in :data:`JITTER`."""
    return interval * rand(*JITTER)


def records_written(store: object) -> int | None:
    """The store's write-count probe (``records_written``), or ``None`` when it keeps none."""
    if getattr(type(store), "supports_write_probe", False) is not True:
        return None
    written = getattr(store, "records_written", None)
    return written if isinstance(written, int) else None


# -- the schedule --------------------------------------------------------------------------------


class StoreAudit:
    """Runs the audits of one instance and keeps what they found.

    :param cache: the cache whose store is audited.
    :param snapshot: memory's state now (the stream manager's ``snapshot``).
    :param repair: writes memory's state for what was lost (see :class:`Repair`).
    :param interval: seconds between audits; 0 turns auditing off.
    :param busy: true while the instance's own writes are on their way to the store (queued,
        being written, or a re-synchronisation pending): an audit then would only find them
        "missing", so it is deferred to the next interval.
    """

    def __init__(
        self,
        cache: AutoConfigCache,
        snapshot: Callable[[], Snapshot],
        repair: Repair,
        interval: float,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.cache = cache
        self.interval = interval
        self._snapshot = snapshot
        self._repair = repair
        self._busy = busy
        self._results: dict[AuditResult, int] = dict.fromkeys(AuditResult, 0)
        self._last_at: datetime | None = None
        self._last_result: AuditResult | None = None
        self._findings = AuditFindings()
        self._repaired = 0
        self._repaired_total = 0
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._foreign: tuple[ForeignRecord, ...] = ()

    @property
    def enabled(self) -> bool:
        """Whether audits run: a store is configured and the interval is not 0."""
        return self.interval > 0 and not self.cache.is_null

    def status(self) -> AuditStatus:
        """What the audits found so far."""
        return AuditStatus(
            interval_seconds=self.interval if self.enabled else 0.0,
            results=dict(self._results),
            last_audit_at=self._last_at,
            last_result=self._last_result,
            findings=self._findings,
            repaired=self._repaired,
            repaired_total=self._repaired_total,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            foreign=self._foreign[:FOREIGN_SHOWN],
        )

    async def run(self, ready: asyncio.Event) -> None:
        """Audit every interval (with jitter) once ``ready`` is set, until cancelled."""
        if not self.enabled:
            return
        await ready.wait()
        while True:
            await asyncio.sleep(next_delay(self.interval))
            await self.audit_once()

    async def audit_once(self) -> AuditResult | None:
        """One audit: compare, read records if needed, repair; never raises a store error.

        :return: how it ended; ``None`` when it was deferred because the instance's own writes
            were on their way (nothing is recorded then).
        """
        try:
            result = await self._audit()
            if result is None:
                logger.debug("store audit deferred: this instance's writes are pending")
                return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Store errors name the store and what failed; they never carry keys (errors.py).
            message = f"{type(exc).__name__}: {exc}"
            if self._last_result is not AuditResult.FAILED:
                logger.warning(
                    "store audit failed (retried in about %g s): %s", self.interval, message
                )
            self._last_error = message
            self._last_error_at = _now()
            self._repaired = 0
            result = AuditResult.FAILED
        self._results[result] += 1
        self._last_result = result
        self._last_at = _now()
        return result

    async def _audit(self) -> AuditResult | None:
        if self._busy():
            return None
        expected = expected_versions(self._snapshot(), self.cache.refusals.current)
        stored = await stored_versions(self.cache)
        diff = compare_versions(expected, stored)
        if not diff.suspects:
            self._note(AuditFindings(ahead=diff.ahead, unknown=diff.unknown), (), 0)
            return AuditResult.OK
        if not stored:
            # An emptied store (cleared, DEL, restarted empty): write the snapshot back whole.
            findings = AuditFindings(missing=len(diff.suspects))
            return self._repaired_result(findings, (), await self._repair(None))
        records = {record.field: record for record in await self.cache.get_records()}
        classified = classify(
            expected,
            diff.suspects,
            records,
            lambda record: judge_record(record, self.cache.codec),
        )
        findings = attrs.evolve(
            classified.findings,
            ahead=classified.findings.ahead + diff.ahead,
            unknown=sum(1 for field in records if field not in expected),
        )
        written = await self._repair(classified.repair) if classified.repair else 0
        return self._repaired_result(findings, classified.foreign, written)

    def _repaired_result(
        self,
        findings: AuditFindings,
        foreign: tuple[ForeignRecord, ...],
        written: int | None,
    ) -> AuditResult | None:
        if written is None:
            # The instance's own writes got there first (queued since the read, or a pending
            # re-synchronisation): what looked lost may be on its way. The next audit judges.
            return None
        self._note(findings, foreign, written)
        if findings.repairable:
            logger.warning(
                "store audit: the store had lost %d record(s) (missing %d, older %d, damaged "
                "%d); %d written again from memory",
                findings.repairable,
                findings.missing,
                findings.older,
                findings.damaged,
                written,
            )
            return AuditResult.REPAIRED
        return AuditResult.OK

    def _note(
        self, findings: AuditFindings, foreign: tuple[ForeignRecord, ...], written: int
    ) -> None:
        if foreign and {entry.field for entry in foreign} != {e.field for e in self._foreign}:
            fields = sorted(entry.field for entry in foreign)
            logger.warning(
                "store audit: %d record(s) under a key or format this instance does not know "
                "are left as they are (another instance or a Relay Proxy wrote them): %s",
                len(fields),
                ", ".join(fields[:10]) + (" ..." if len(fields) > 10 else ""),
            )
        self._findings = findings
        self._foreign = foreign
        self._repaired = written
        self._repaired_total += written


def _now() -> datetime:
    return datetime.now(UTC)
