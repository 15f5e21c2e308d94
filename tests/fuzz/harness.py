"""Run one script against a real StreamManager over a real SQLite store and observe it.

Everything is real except time: the client's reconnection delays are recorded (by the stream
tests' :class:`ControlledSleep`) instead of waited, so a script of many reconnects runs in
milliseconds and every delay the client chose can be checked.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tracemalloc
from pathlib import Path

import attrs

from autoconfig_cache.cache import AutoConfigCache, LoadResult
from autoconfig_cache.stream import (
    AutoConfigHandler,
    BackoffPolicy,
    BaseHandler,
    StreamClient,
    StreamManager,
)
from autoconfig_cache.stream.manager import StreamManagerStatus
from tests.stream.conftest import ControlledSleep

from .events import MAX_EVENT_BYTES
from .script import Script
from .server import SENTINEL_ID, ScriptedStreamServer

#: The Relay Proxy's schedule (the client's default), so the floor checked is the real one.
BACKOFF = BackoffPolicy()
#: Store re-synchronisation after a failed write: quick, so that a store pinned by one bad item
#: shows within the example instead of after the default 1 to 30 s.
RESYNC = BackoffPolicy(base=0.01, maximum=0.05, jitter=0.5, reset_after=0.0)
#: Failed re-synchronisations after which a store that still has not caught up is pinned.
PINNED_AFTER = 3
#: Safety net against a hang (not a performance assertion): the script is local and tiny.
SETTLE_TIMEOUT = 20.0
CACHE_KEY = "fuzz"


class LogCapture(logging.Handler):
    """Keeps every record of every logger, at every level, while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        self._saved = root.level, logging.getLogger("autoconfig_cache").level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)  # debug records too: they print items
        logging.getLogger("autoconfig_cache").setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._saved[0])
        logging.getLogger("autoconfig_cache").setLevel(self._saved[1])

    def texts(self) -> list[tuple[logging.LogRecord, str]]:
        """Each record with its full text: message, traceback, stack."""
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return [(record, formatter.format(record)) for record in self.records]


@attrs.frozen
class Observation:
    """What one run showed."""

    settled: str  # "yes", or why the stream or the store never caught up
    stream_task_alive: bool
    close_error: str | None
    status: StreamManagerStatus
    ready: bool
    peak_bytes: int
    delays: list[float]
    delays_taken_before_request: list[int]
    requests: int
    unauthorized_requests: int
    stored: LoadResult
    logs: list[tuple[logging.LogRecord, str]]


async def run_script(
    script: Script,
    directory: Path,
    autoconfig_key: str,
    encryption_key: str,
    *,
    max_event_bytes: int = MAX_EVENT_BYTES,
    backoff: BackoffPolicy = BACKOFF,
    handler: AutoConfigHandler | None = None,
) -> Observation:
    """Play ``script`` to a fresh manager and store; stop once the sentinel is handled.

    The keyword arguments exist for the harness's own tests, which plant a fault (no event
    limit, no backoff, a handler that logs a key) to show that the invariants catch it.
    """
    sleep = ControlledSleep(budget=sys.maxsize)  # records each delay, never waits
    taken: list[int] = []
    url = f"sqlite://{directory / 'cache.db'}"

    def open_cache() -> AutoConfigCache:
        return AutoConfigCache.open(url, cache_key=CACHE_KEY, encryption_key=encryption_key)

    with LogCapture() as logs:
        async with ScriptedStreamServer(
            script, autoconfig_key, lambda: taken.append(len(sleep.delays))
        ) as server:
            client = StreamClient(
                server.uri,
                autoconfig_key,
                backoff=backoff,
                sleep=sleep,
                max_event_bytes=max_event_bytes,
                trust_env=False,
            )
            async with open_cache() as cache, open_cache() as reader:
                manager = StreamManager(
                    cache, handler or BaseHandler(), client=client, resync_backoff=RESYNC
                )
                tracemalloc.start()
                try:
                    await manager.start()
                    settled = await _settle(manager, server, reader)
                    peak = tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()
                task = manager.stream_task
                alive = task is not None and not task.done()
                status = manager.status()
                close_error = None
                try:
                    await manager.close()
                except Exception as exc:  # reported by the invariant, not raised here
                    close_error = f"{type(exc).__name__}: {exc}"
                stored = await reader.get_all()
        return Observation(
            settled=settled,
            stream_task_alive=alive,
            close_error=close_error,
            status=status,
            ready=manager.ready.is_set(),
            peak_bytes=peak,
            delays=list(sleep.delays),
            delays_taken_before_request=taken,
            requests=server.requests,
            unauthorized_requests=server.unauthorized,
            stored=stored,
            logs=logs.texts(),
        )


async def _settle(
    manager: StreamManager, server: ScriptedStreamServer, reader: AutoConfigCache
) -> str:
    """Wait until the sentinel is in the store with no write pending, or the store is pinned
    (still not caught up after :data:`PINNED_AFTER` failed re-synchronisations)."""

    async def wait() -> str:
        while manager.get_environment(SENTINEL_ID) is None:
            task = manager.stream_task
            if task is not None and task.done():
                return "the stream task ended before the script was played"
            await asyncio.sleep(0.005)
        errors_then = manager.status().store_error_count
        while True:
            status = manager.status()
            if not status.store_dirty and status.pending_writes == 0:
                stored = await reader.get_all()
                if SENTINEL_ID in stored.snapshot.environments:
                    return "yes"
            elif status.store_error_count >= errors_then + PINNED_AFTER:
                return f"the store is pinned: {status.last_store_error}"
            await asyncio.sleep(0.005)

    try:
        return await asyncio.wait_for(wait(), SETTLE_TIMEOUT)
    except TimeoutError:
        done = server.script_done.is_set()
        return f"no progress in {SETTLE_TIMEOUT:g} s (script played: {done})"
