"""The stream manager: start from the cache, race the stream, persist every accepted change.

Start-up (docs/architecture.md, "Runtime behaviour"): :meth:`StreamManager.start` reads the
cache and connects to the stream concurrently.

* If the cache answers first, its snapshot goes through the same reconciliation as a ``put``, is
  served (the manager becomes ready, source ``cache``) and is **not** written back.
* The first stream ``put`` is authoritative: it cancels a cache read still in flight (a cache
  result that arrives later is discarded), reconciles — deleting what the cache had and the
  stream lacks — and is persisted with ``set_all``.
* ``patch``/``delete`` accepted by the receivers are upserted/deleted in the store.

Store writes run in one background writer, in stream order, so a slow store never holds up the
stream. A failed write (any exception) is logged and counted, and marks the store *dirty*; while
dirty, individual writes are not attempted: a resync loop retries, with backoff, writing the
whole in-memory snapshot as it is at that moment (which already includes every change made
since), and normal writes resume once it succeeds. So no update is lost and none is applied out
of order. Records the store *refused* (a :class:`~autoconfig_cache.errors.PartialWriteError`
whose failures are all ``refused``: over a backend limit, say) are the exception: the rest was
written, and writing them again at the same version would fail the same way, so they do not
mark the store dirty; the cache logs each once, and ``/status`` and ``/metrics`` count them.

Once a configuration is held, the store is also audited on a schedule (:mod:`..audit`): what it
lost (cleared, emptied, restarted empty) is written again from memory, under the writer's lock,
so that a repair and the stream's writes never interleave.

``reconnect`` events and malformed data restart the connection. A rejected AutoConfig key
(401/403) does not stop the stream: the client keeps retrying on its extended schedule (5 min
growing to 1 h, as Relay Proxy v9 does), and whatever configuration is held keeps being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import attrs

from ..cache import AutoConfigCache
from ..errors import PartialWriteError, RefusedRecord
from ..gcpause import gc_paused
from ..models import Environment, Filter, Item, Snapshot, Tombstone
from ..records import ItemKind, StoredRecord, field_name, parse_field
from ..report import LoadReport
from .client import (
    DEFAULT_STREAM_URI,
    BackoffPolicy,
    RestartStream,
    StreamClient,
    StreamState,
)
from .events import (
    DeleteMessage,
    MalformedEventError,
    PatchMessage,
    PutMessage,
    ReconnectMessage,
    RejectedMessage,
    parse_event,
)
from .handler import AutoConfigHandler, SnapshotSource, call_handler, invoke_handler
from .receiver import Action, MessageReceiver
from .sse import ServerSentEvent

if TYPE_CHECKING:  # imported when the first audit runs or is asked about, not at start-up
    from ..audit import AuditStatus, StoreAudit

logger = logging.getLogger(__name__)

#: Resync delays after a store failure: quick first retry, then up to 30 s between attempts.
DEFAULT_RESYNC_BACKOFF = BackoffPolicy(base=1.0, maximum=30.0, jitter=0.5, reset_after=0.0)


class _WriteKind(enum.Enum):
    FULL = "set_all"
    UPSERT = "upsert"
    DELETE = "delete"


@attrs.frozen
class _WriteOp:
    kind: _WriteKind
    item: Item | None = None
    item_kind: ItemKind | None = None
    item_id: str = ""
    version: int = 0


_FULL = _WriteOp(_WriteKind.FULL)

#: Seconds the stream waits for the cache read before connecting (``StreamManager``'s
#: ``cache_head_start``): a read of 10,000 items takes ~0.15 s, of 100,000 ~1.5 s.
DEFAULT_CACHE_HEAD_START = 1.0


@attrs.frozen
class StreamManagerStatus:
    """A point-in-time view of the manager, for a status endpoint or logs. No secrets in it.

    Times are UTC datetimes; ``None`` means "never".
    """

    source: SnapshotSource
    ready: bool
    environments: int
    filters: int
    stream_connected: bool
    stream_connections: int
    last_event_at: datetime | None
    stream_error: str | None  # the last connection problem (secrets masked); kept on recovery
    stream_stopped: bool  # True once the stream has ended for good (closed): no more retries
    cache_load: LoadReport | None
    cached_data_age_seconds: float | None
    cache_read_cancelled: bool
    cache_result_discarded: bool
    store_error_count: int
    last_store_error: str | None
    last_store_error_at: datetime | None
    last_successful_write_at: datetime | None
    store_dirty: bool
    resync_count: int
    pending_writes: int
    # Added after 0.1, with defaults so that existing constructors keep working.
    stream_state: StreamState = StreamState.INITIALIZING
    stream_state_since: datetime | None = None
    stream_error_at: datetime | None = None
    stream_error_status: int | None = None  # HTTP status of the last failure, if any
    stream_unauthorized: bool = False  # the key is being rejected (401/403)
    stream_retry_extended: bool = False  # retrying on the extended schedule
    stream_next_attempt_at: datetime | None = None
    stream_oversize_events: int = 0  # events over max_event_bytes (each dropped the connection)
    # Items the stream sent that were refused as malformed or invalid (left out of a put, or a
    # patch/delete skipped); each was logged as a warning and the rest of its event applied.
    stream_rejected_items: int = 0
    # Records the store refused (over a backend limit, say), each (field, version) counted once
    # since the start, and those still refused; the other records were written.
    store_refused_records: int = 0
    store_refused: tuple[RefusedRecord, ...] = ()
    # The store audits: when, what they found and repaired (None: no audit object, e.g. built
    # by hand in a test).
    audit: AuditStatus | None = None


T = TypeVar("T", Environment, Filter)


def _now() -> datetime:
    return datetime.now(UTC)


class StreamManager:
    """Keeps the AutoConfig state in memory, in the handler and in the cache, in step.

    :param cache: the cache to load from and write to (``AutoConfigCache.null()`` for none). The
        manager does not close it: whoever opened it does, after :meth:`close`.
    :param handler: the application's :class:`~autoconfig_cache.stream.handler.AutoConfigHandler`.
    :param autoconfig_key: the AutoConfig key (required unless ``client`` is given).
    :param stream_uri: the stream base URI.
    :param client: a ready :class:`StreamClient` (overrides the three connection parameters).
    :param backoff: stream reconnection delays (the Relay Proxy's by default).
    :param read_timeout: seconds without data before the stream is reconnected.
    :param resync_backoff: delays between attempts to re-synchronise a failed store.
    :param audit_interval: seconds between two audits of the store (:mod:`..audit`); ``None``
        takes the store's default (30 s; DynamoDB 300 s), 0 turns auditing off.
    :param cache_head_start: seconds the stream waits for the cache read to finish before it
        connects (it connects at once when the read ends sooner: see :meth:`_run_stream`).
    """

    def __init__(
        self,
        cache: AutoConfigCache,
        handler: AutoConfigHandler,
        *,
        autoconfig_key: str | None = None,
        stream_uri: str = DEFAULT_STREAM_URI,
        client: StreamClient | None = None,
        backoff: BackoffPolicy | None = None,
        read_timeout: float = 300.0,
        resync_backoff: BackoffPolicy = DEFAULT_RESYNC_BACKOFF,
        close_drain_timeout: float = 2.0,
        audit_interval: float | None = None,
        cache_head_start: float = DEFAULT_CACHE_HEAD_START,
    ) -> None:
        if client is None:
            if not autoconfig_key:
                raise ValueError("StreamManager needs an autoconfig_key or a client")
            client = StreamClient(
                stream_uri, autoconfig_key, backoff=backoff, read_timeout=read_timeout
            )
        self.cache = cache
        self.handler = handler
        self.client = client
        self.resync_backoff = resync_backoff
        self.close_drain_timeout = close_drain_timeout
        self.cache_head_start = cache_head_start
        #: Set once a complete configuration is held, from the cache or the stream.
        self.ready = asyncio.Event()
        self._environments: MessageReceiver[Environment] = MessageReceiver()
        self._filters: MessageReceiver[Filter] = MessageReceiver()
        # Bumped whenever the items held change, so a reader (the /status page) can cache what
        # it renders from them until the next change instead of rendering on every request.
        self._state_version = 0
        self._apply_lock = asyncio.Lock()
        self._source = SnapshotSource.NONE
        self._stream_put_seen = False
        self._cache_applying = False
        self._cache_read_cancelled = False
        self._cache_result_discarded = False
        self._cache_load: LoadReport | None = None
        #: The cache read did not finish (the stream's put cancelled it, or it failed): once a
        #: full write has gone through, the store is read to learn what that write, of changed
        #: items only, could not know it had to rewrite (see :meth:`_take_stock`).
        self._stock_due = False
        #: Items the latest stream put refused as malformed that this process holds no state of
        #: (the put won the race against the cache read, say): the store keeps its copy of them.
        self._refused_unknown: frozenset[tuple[ItemKind, str]] = frozenset()
        #: Items the stream sent that were refused as malformed or invalid, since the start.
        self._rejected_items = 0
        self._writes: asyncio.Queue[_WriteOp] = asyncio.Queue()
        self._dirty = False
        self._resync_attempts = 0
        self._resync_count = 0
        self._store_error_count = 0
        self._last_store_error: str | None = None
        self._last_store_error_at: datetime | None = None
        self._last_write_at: datetime | None = None
        # Held by the writer around each store write, and by an audit's repair: so a repair
        # reads memory and writes with no stream write in between (see _repair_store).
        self._write_lock = asyncio.Lock()
        self._audit_interval = audit_interval
        self._store_audit: StoreAudit | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._closed = False

    # ---- public API -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start reading the cache, connecting to the stream and writing the store; returns at
        once. Await :meth:`wait_ready` (or :attr:`ready`) to know when there is data to serve."""
        if self._closed:
            raise RuntimeError("this StreamManager is closed; create a new one")
        if self._started:
            return
        self._started = True
        self._tasks["writer"] = asyncio.create_task(self._writer(), name="autoconfig-writer")
        self._tasks["cache"] = asyncio.create_task(self._load_cache(), name="autoconfig-cache")
        self._tasks["stream"] = asyncio.create_task(self._run_stream(), name="autoconfig-stream")
        if self._audit_interval != 0 and not self.cache.is_null:
            self._tasks["audit"] = asyncio.create_task(self._run_audits(), name="autoconfig-audit")

    async def wait_ready(self) -> None:
        """Wait until a complete configuration is held (wrap in ``asyncio.timeout`` to bound it)."""
        await self.ready.wait()

    async def close(self) -> None:
        """Stop the stream, give queued store writes up to ``close_drain_timeout`` seconds to
        finish (unless the store is failing), then cancel everything. Idempotent; no task is
        left running afterwards."""
        if self._closed:
            return
        self._closed = True
        for name in ("stream", "cache", "audit", "stock"):
            task = self._tasks.get(name)
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for n, t in self._tasks.items() if n != "writer"), return_exceptions=True
        )
        writer = self._tasks.get("writer")
        if writer is not None and not writer.done():
            if not self._dirty and self.close_drain_timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._writes.join(), self.close_drain_timeout)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        await self.client.close()

    async def __aenter__(self) -> StreamManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def source(self) -> SnapshotSource:
        """Where the configuration being served came from."""
        return self._source

    @property
    def stream_task(self) -> asyncio.Task[None] | None:
        """The task running the stream (it only ends with :meth:`close`)."""
        return self._tasks.get("stream")

    def snapshot(self) -> Snapshot:
        """The configuration held now (new mappings; the items themselves are immutable)."""
        tombstones = [
            Tombstone(kind, item_id, version)
            for kind, receiver in (
                (ItemKind.ENVIRONMENT, self._environments),
                (ItemKind.FILTER, self._filters),
            )
            for item_id, version in receiver.tombstones().items()
        ]
        return Snapshot(
            environments=self._environments.live_items(),
            filters=self._filters.live_items(),
            tombstones=tuple(tombstones),
        )

    @property
    def state_version(self) -> int:
        """A counter that changes whenever the environments or filters held change (a patch or
        delete applied, a put or the cache's data reconciled); equal values mean the same items."""
        return self._state_version

    def get_environment(self, env_id: str) -> Environment | None:
        """One environment by id, or ``None``."""
        return self._environments.get(env_id)

    def get_filter(self, filter_id: str) -> Filter | None:
        """One filter by id, or ``None``."""
        return self._filters.get(filter_id)

    def status(self) -> StreamManagerStatus:
        """The manager's state for a status endpoint."""
        state = self.client.state
        return StreamManagerStatus(
            source=self._source,
            ready=self.ready.is_set(),
            environments=len(self._environments),
            filters=len(self._filters),
            stream_connected=state.connected,
            stream_connections=state.connections,
            last_event_at=_utc(state.last_event_at),
            stream_error=state.last_error,
            stream_stopped=state.state is StreamState.OFF,
            cache_load=self._cache_load,
            cached_data_age_seconds=(
                self._cache_load.age_seconds() if self._cache_load is not None else None
            ),
            cache_read_cancelled=self._cache_read_cancelled,
            cache_result_discarded=self._cache_result_discarded,
            store_error_count=self._store_error_count,
            last_store_error=self._last_store_error,
            last_store_error_at=self._last_store_error_at,
            last_successful_write_at=self._last_write_at,
            store_dirty=self._dirty,
            resync_count=self._resync_count,
            pending_writes=self._writes.qsize(),
            stream_state=state.state,
            stream_state_since=_utc(state.state_since),
            stream_error_at=_utc(state.last_error_at),
            stream_error_status=state.last_error_status,
            stream_unauthorized=state.unauthorized,
            stream_retry_extended=state.extended,
            stream_next_attempt_at=_utc(state.next_attempt_at),
            stream_oversize_events=state.oversize_events,
            stream_rejected_items=self._rejected_items,
            store_refused_records=self.cache.refusals.total,
            store_refused=self.cache.refusals.current,
            audit=self.audit.status(),
        )

    @property
    def audit(self) -> StoreAudit:
        """The store audits of this manager (:meth:`StoreAudit.audit_once` runs one now)."""
        if self._store_audit is None:
            # Built on first use, not in __init__: the audit module is not needed to start.
            from ..audit import StoreAudit, default_interval

            interval = self._audit_interval
            self._store_audit = StoreAudit(
                self.cache,
                self.snapshot,
                self._repair_store,
                default_interval(self.cache) if interval is None else interval,
                busy=self._writes_pending,
            )
        return self._store_audit

    async def _run_audits(self) -> None:
        # The audits start once ready (StoreAudit.run waits for it too); waiting here first
        # keeps the audit module out of the start-up until then.
        await self.ready.wait()
        await self.audit.run(self.ready)

    # ---- cache --------------------------------------------------------------------------------

    async def _load_cache(self) -> None:
        if self.cache.is_null:
            # Caching off: nothing to read (the service warns about it once, at start).
            logger.info("no cache to read (caching off); waiting for the stream")
            return
        try:
            result = await self.cache.get_all()
        except asyncio.CancelledError:
            if self._stream_put_seen:
                logger.info("cache read cancelled: the stream's put arrived first")
            raise
        except Exception as exc:
            # Never fatal: the stream is the source of truth, the cache only a head start.
            self._note_store_error("get_all", exc)
            self._stock_due = True
            return
        async with self._apply_lock:
            if self._stream_put_seen:
                self._cache_result_discarded = True
                logger.info("cache result discarded: the stream's put arrived first")
                return
            self._cache_load = result.report
            # Deletions the store remembers: an older update arriving later stays ignored here
            # too, exactly as if this process had seen the delete itself.
            for tombstone in result.snapshot.tombstones:
                self._receiver(tombstone.kind).delete(tombstone.item_id, tombstone.version)
            if len(result.snapshot) == 0:
                logger.info("cache holds no AutoConfig data; waiting for the stream")
                return
            logger.info(
                "serving %d environments and %d filters from the cache (age %s s)",
                len(result.snapshot.environments),
                len(result.snapshot.filters),
                _fmt_age(result.report.age_seconds()),
            )
            self._cache_applying = True
            try:
                await self._reconcile(result.snapshot, {}, SnapshotSource.CACHE)
            finally:
                self._cache_applying = False

    # ---- stream -------------------------------------------------------------------------------

    async def _run_stream(self) -> None:
        await self._give_the_cache_a_head_start()
        while True:
            try:
                await self.client.run(self._on_event)
                return
            except Exception:
                # A bug, not a network problem (the client handles those): keep the stream alive.
                logger.exception("AutoConfig stream loop failed; restarting it")
                await asyncio.sleep(self.client.next_delay())

    async def _give_the_cache_a_head_start(self) -> None:
        """Wait until the cache read has ended (loaded, empty, failed), at most
        :attr:`cache_head_start` seconds.

        Reading and decoding a large cache and starting the stream (importing the HTTP client,
        loading the CA bundle, the TLS handshake) are both work for the one thread that runs
        this process's Python: started together, each waits for the other, and an instance
        that could serve from its cache in 0.2 s would need 0.4. Waiting costs the stream
        nothing that matters: its first ``put`` replaces the cache's data anyway, and it cannot
        arrive before a cache on the local network has answered. The bound keeps a store that
        hangs from holding back the stream, which is then the only source.
        """
        task = self._tasks.get("cache")
        if task is None or task.done() or self.cache_head_start <= 0:
            return
        await asyncio.wait([task], timeout=self.cache_head_start)

    async def _on_event(self, event: ServerSentEvent) -> None:
        if event.type == "put":
            # Applying a put creates as many objects as parsing it; none is garbage, so the
            # collector stays paused until the handler has heard about them all (see gc_paused).
            with gc_paused():
                await self._on_message(event)
        else:
            await self._on_message(event)

    async def _on_message(self, event: ServerSentEvent) -> None:
        try:
            message = parse_event(event)
        except MalformedEventError as exc:
            logger.error("malformed AutoConfig stream data: %s; reconnecting", exc)
            raise RestartStream(str(exc)) from None
        if message is None:
            return
        if isinstance(message, ReconnectMessage):
            logger.info("AutoConfig stream asked to reconnect")
            raise RestartStream("the server sent a reconnect event")
        if isinstance(message, RejectedMessage):
            self._rejected_items += 1
        elif isinstance(message, PutMessage):
            self._rejected_items += message.rejected_items
            await self._apply_stream_put(message)
        elif isinstance(message, PatchMessage):
            await self._apply_patch(message)
        elif isinstance(message, DeleteMessage):
            await self._apply_delete(message)

    async def _apply_stream_put(self, message: PutMessage) -> None:
        self._stream_put_seen = True
        cache_task = self._tasks.get("cache")
        if cache_task is not None and not cache_task.done() and not self._cache_applying:
            # Still reading: the stream's data is authoritative, so the read is useless now.
            self._cache_read_cancelled = True
            self._stock_due = True
            cache_task.cancel()
        async with self._apply_lock:
            snapshot = message.snapshot
            logger.info(
                "stream put: %d environments, %d filters",
                len(snapshot.environments),
                len(snapshot.filters),
            )
            await self._reconcile(snapshot, message.skipped_ids, SnapshotSource.STREAM)
            self._note_refused_unknown(message.skipped_ids)
            self._enqueue(_FULL)

    def _receiver(self, kind: ItemKind) -> MessageReceiver[Environment] | MessageReceiver[Filter]:
        return self._environments if kind is ItemKind.ENVIRONMENT else self._filters

    def _note_refused_unknown(self, skipped: Mapping[ItemKind, frozenset[str]]) -> None:
        """Remember which items a put refused that this process knows nothing of.

        A refused item this process knows (from the cache or an earlier put) keeps that state,
        in memory and so in the store (see :meth:`_reconcile_kind`). One it does not know would
        be left out of the put's ``set_all`` and so deleted from the store, losing the last good
        copy there. The Relay Proxy v9 keeps it: its ``persistPut`` writes, for each environment
        the put refused, the entry the cache held before (ld-relay
        ``internal/autoconfig/stream_manager.go``; ``TestCacheKeepsTheLastGoodEntryForARefused
        Environment`` in ``stream_manager_malformed_credentials_test.go``). So does
        :meth:`_store_snapshot`, for these items.
        """
        self._refused_unknown = self._unknown(
            (kind, item_id) for kind, ids in skipped.items() for item_id in ids
        )
        if self._refused_unknown:
            fields = sorted(field_name(kind, item_id) for kind, item_id in self._refused_unknown)
            logger.warning(
                "stream put: %d refused item(s) are unknown to this process; the store keeps "
                "its copy of them: %s",
                len(fields),
                ", ".join(fields[:10]) + (" ..." if len(fields) > 10 else ""),
            )

    def _unknown(self, items: Iterable[tuple[ItemKind, str]]) -> frozenset[tuple[ItemKind, str]]:
        """The ``(kind, id)`` pairs of ``items`` this process holds no state of (nor tombstone)."""
        return frozenset(
            (kind, item_id)
            for kind, item_id in items
            if self._receiver(kind).known_version(item_id) is None
        )

    async def _apply_patch(self, message: PatchMessage) -> None:
        item = message.item
        async with self._apply_lock:
            if isinstance(item, Environment):
                action = self._environments.upsert(item.env_id, item)
                if action is not Action.NOOP:
                    self._state_version += 1
                if action is Action.INSERT:
                    await call_handler(self.handler.on_environment_added, item)
                elif action is Action.UPDATE:
                    await call_handler(self.handler.on_environment_updated, item)
            else:
                action = self._filters.upsert(item.filter_id, item)
                if action is not Action.NOOP:
                    self._state_version += 1
                if action is Action.INSERT:
                    await call_handler(self.handler.on_filter_added, item)
                elif action is Action.UPDATE:
                    await call_handler(self.handler.on_filter_updated, item)
            logger.debug(
                "patch %s %s v%d: %s %r", item.kind, item.id, item.version, action.value, item
            )
            if action is not Action.NOOP:
                self._enqueue(_WriteOp(_WriteKind.UPSERT, item=item))

    async def _apply_delete(self, message: DeleteMessage) -> None:
        async with self._apply_lock:
            if message.kind is ItemKind.ENVIRONMENT:
                action, env = self._environments.delete(message.item_id, message.version)
                if env is not None:
                    self._state_version += 1
                    await call_handler(self.handler.on_environment_deleted, env)
            else:
                action, flt = self._filters.delete(message.item_id, message.version)
                if flt is not None:
                    self._state_version += 1
                    await call_handler(self.handler.on_filter_deleted, flt)
            logger.debug(
                "delete %s %s v%d: %s", message.kind, message.item_id, message.version, action.value
            )
            if action is Action.DELETE:
                self._enqueue(
                    _WriteOp(
                        _WriteKind.DELETE,
                        item_kind=message.kind,
                        item_id=message.item_id,
                        version=message.version,
                    )
                )

    # ---- reconciliation (shared by the cache and a put) ---------------------------------------

    async def _reconcile(
        self,
        snapshot: Snapshot,
        skipped: Mapping[ItemKind, frozenset[str]],
        source: SnapshotSource,
    ) -> None:
        h = self.handler
        try:
            await self._reconcile_kind(
                self._environments,
                snapshot.environments,
                skipped.get(ItemKind.ENVIRONMENT),
                h.on_environment_added,
                h.on_environment_updated,
                h.on_environment_deleted,
            )
            await self._reconcile_kind(
                self._filters,
                snapshot.filters,
                skipped.get(ItemKind.FILTER),
                h.on_filter_added,
                h.on_filter_updated,
                h.on_filter_deleted,
            )
        finally:
            # Once, after the whole snapshot: what was rendered while it was applied is stale.
            self._state_version += 1
        self._source = source
        self.ready.set()
        await call_handler(h.on_all_environments_received, source)

    @staticmethod
    async def _reconcile_kind(
        receiver: MessageReceiver[T],
        items: Mapping[str, T],
        skipped: frozenset[str] | None,
        added: Callable[[T], Awaitable[None] | None],
        updated: Callable[[T], Awaitable[None] | None],
        deleted: Callable[[T], Awaitable[None] | None],
    ) -> None:
        debug = logger.isEnabledFor(logging.DEBUG)
        for item_id, item in items.items():
            action = receiver.upsert(item_id, item)
            if action is Action.INSERT:
                pending = invoke_handler(added, item)
            elif action is Action.UPDATE:
                pending = invoke_handler(updated, item)
            else:
                pending = None
            if pending is not None:
                await pending
            if debug:
                logger.debug(
                    "put %s %s v%d: %s %r", item.kind, item_id, item.version, action.value, item
                )
        keep: Callable[[str], bool] = (
            (lambda item_id: item_id in items or item_id in skipped)
            if skipped
            else items.__contains__
        )
        for item in receiver.retain(keep):
            if debug:
                logger.debug("put %s %s: deleted (absent from the put)", item.kind, item.id)
            await call_handler(deleted, item)

    # ---- store writer -------------------------------------------------------------------------

    def _enqueue(self, op: _WriteOp) -> None:
        # Caching off: encrypting 10,000 items only for the null store to drop them is waste.
        if not self.cache.is_null:
            self._writes.put_nowait(op)

    def _drain_writes(self) -> None:
        """Forget queued writes: the snapshot about to be written already includes them."""
        while True:
            try:
                self._writes.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._writes.task_done()

    def _note_store_error(self, operation: str, exc: BaseException) -> None:
        self._store_error_count += 1
        # Store errors name the store and what failed; they never carry keys (errors.py).
        self._last_store_error = f"{operation}: {type(exc).__name__}: {exc}"
        self._last_store_error_at = _now()
        logger.warning("AutoConfig cache %s failed (%s): %s", operation, type(exc).__name__, exc)

    async def _store_snapshot(self) -> tuple[Snapshot, list[StoredRecord]]:
        """What a full write gives the store: the state held now, and the stored records of the
        items the latest put refused that this process knows nothing of (kept as they are).

        The snapshot is taken before any await, so that it matches the queued writes just
        drained. When there are such items the store is read first; if that read fails, this
        raises and nothing is written (the write is retried as a re-synchronisation), rather
        than rewrite the store without them, as the Relay Proxy v9 leaves its cache alone when
        it cannot read the previous entries.
        """
        snapshot = self.snapshot()
        # Known by now (a patch since the put, say): held in memory, so in the snapshot.
        fields = {field_name(*pair) for pair in self._unknown(self._refused_unknown)}
        if not fields:
            return snapshot, []
        records = await self.cache.get_records()
        return snapshot, [record for record in records if record.field in fields]

    async def _writer(self) -> None:
        while True:
            if self._dirty:
                await self._resync()
                continue
            op = await self._writes.get()
            try:
                async with self._write_lock:
                    await self._write(op)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _only_refused(exc):
                    # The rest was written; what the store refused it would refuse again (the
                    # cache logged and counted it): no re-synchronisation, ever, for it.
                    self._last_write_at = _now()
                    self._after_full_write(op)
                    continue
                self._note_store_error(op.kind.value, exc)
                self._dirty = True
                logger.warning("AutoConfig cache marked for re-synchronisation from memory")
            else:
                self._last_write_at = _now()
                self._after_full_write(op)
            finally:
                self._writes.task_done()

    async def _write(self, op: _WriteOp) -> None:
        """One queued write (the caller holds the writer's lock)."""
        if op.kind is _WriteKind.FULL:
            self._drain_writes()
            snapshot, keep = await self._store_snapshot()
            await self.cache.set_all(snapshot, keep=keep)
        elif op.kind is _WriteKind.UPSERT:
            assert op.item is not None
            await self.cache.upsert(op.item)
        else:
            assert op.item_kind is not None
            await self.cache.delete(op.item_kind, op.item_id, op.version)

    async def _resync(self) -> None:
        delay = self.resync_backoff.delay(self._resync_attempts, rand=random.random())
        await asyncio.sleep(delay)
        try:
            async with self._write_lock:
                # Take the snapshot and forget the queued writes with no await in between: every
                # queued change is already in memory, and changes made from now on are queued
                # after this point.
                self._drain_writes()
                snapshot, keep = await self._store_snapshot()
                await self.cache.set_all(snapshot, keep=keep)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not _only_refused(exc):
                self._resync_attempts += 1
                self._note_store_error("resync", exc)
                return
        self._dirty = False
        self._resync_attempts = 0
        self._resync_count += 1
        self._last_write_at = _now()
        logger.info("AutoConfig cache re-synchronised from memory (%d items)", len(snapshot))
        self._after_full_write(_FULL)

    def _after_full_write(self, op: _WriteOp) -> None:
        """After a full write: read the store when no cache read finished (see _take_stock)."""
        task = self._tasks.get("stock")
        if (
            op.kind is _WriteKind.FULL
            and self._stock_due
            and not self._closed
            and (task is None or task.done())
        ):
            self._stock_due = False
            self._tasks["stock"] = asyncio.create_task(self._take_stock(), name="autoconfig-stock")

    async def _take_stock(self) -> None:
        """Learn what the store holds that a full write must rewrite, and have it rewritten.

        A full write sends every item, but the store writes only those whose version it does
        not hold, and the cache rewrites the rest only when its last read found them unreadable,
        under a previous key or in an older format. A process whose cache read never finished
        (the stream's put won the race, or the store failed) has no such read: records still
        under a previous key would stay so until their item changes. So, once the first full
        write has gone through, the store is read (never applied: the stream's data stands)
        and, if it holds such records, a full write is queued that rewrites them once, keeping
        records a newer release wrote. A failed read is tried again after the next full write.
        """
        try:
            due = await self.cache.take_stock()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._note_store_error("get_all", exc)
            self._stock_due = True
            return
        if due:
            logger.info(
                "the store holds records under a previous key, unreadable or in an older "
                "format, which the cache read cut short by the stream could not report; "
                "rewriting them"
            )
            self._enqueue(_FULL)

    # ---- store audit repairs ------------------------------------------------------------------

    def _writes_pending(self) -> bool:
        """Whether writes of this instance are on their way to the store (queued, being written,
        or a re-synchronisation pending): what an audit would find missing may be among them."""
        return self._dirty or self._write_lock.locked() or not self._writes.empty()

    async def _repair_store(self, fields: Sequence[str] | None) -> int | None:
        """Write memory's state of ``fields`` (``None``: of everything) for the store audit.

        Under the writer's lock: memory is read there, and every change made to it later is
        queued after this point, so a repair never lands after a newer stream write (it never
        writes back an item a ``put`` has just removed, say). ``fields`` get guarded upserts of
        their item or tombstone as memory holds it now; ``None`` (the store was found empty) is
        the full write a re-synchronisation does.

        :return: the records written; ``None`` when writes are queued since the audit's read, or
            a re-synchronisation is pending (the store failed and the resync loop writes all of
            it): the audit is then deferred.
        :raises Exception: what the store raised, after recording it as a store error and
            queueing a full write, which hands a failing store to the re-synchronisation loop.
        """
        async with self._write_lock:
            if self._dirty or not self._writes.empty():
                return None  # the writer goes first: the next audit judges what is still lost
            try:
                written = await (
                    self._rewrite_all() if fields is None else self._rewrite_fields(fields)
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._note_store_error("audit repair", exc)
                self._enqueue(_FULL)
                raise
        if written:
            self._last_write_at = _now()
        return written

    async def _rewrite_all(self) -> int:
        """The full write of a re-synchronisation; the records it wrote (by the store's write
        probe when it keeps one, else every record sent)."""
        from ..audit import records_written

        before = records_written(self.cache.store)
        snapshot, keep = await self._store_snapshot()
        try:
            await self.cache.set_all(snapshot, keep=keep)
        except PartialWriteError as exc:
            if not exc.only_refused:
                raise
        after = records_written(self.cache.store)
        if before is None or after is None:
            return len(snapshot) + len(snapshot.tombstones)
        return after - before

    async def _rewrite_fields(self, fields: Sequence[str]) -> int:
        """Guarded upserts of memory's item or tombstone of each field; the records written."""
        written = 0
        for field in fields:
            parsed = parse_field(field)
            if parsed is None:
                continue
            kind, item_id = parsed
            receiver = self._receiver(kind)
            item = receiver.get(item_id)
            version = receiver.known_version(item_id)
            try:
                if item is not None:
                    written += await self.cache.upsert(item)
                elif version is not None and receiver.is_deleted(item_id):
                    written += await self.cache.delete(kind, item_id, version)
            except PartialWriteError as exc:
                if not exc.only_refused:
                    raise
                # Refused for good (logged and counted by the cache): the others go on.
        return written


def _only_refused(exc: Exception) -> bool:
    """Whether a failed write wrote everything but records the store refused for good (a
    record refused at a version is refused again at that version): not a store failure."""
    return isinstance(exc, PartialWriteError) and exc.only_refused


def _utc(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None


def _fmt_age(age: float | None) -> str:
    return "unknown" if age is None else f"{age:.0f}"
