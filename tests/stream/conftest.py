"""Fixtures for the stream tests: a real local stream server on loopback, stores, a handler
that records what it is told, and a way to wait for conditions without timing assertions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.errors import StoreUnavailableError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.models import Environment, Filter, Snapshot
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.service.status import StatusServer
from autoconfig_cache.stores.memory import MemoryStore
from autoconfig_cache.stream import (
    BackoffPolicy,
    SnapshotSource,
    StreamClient,
    StreamManager,
    StreamServer,
)
from autoconfig_cache.stream.manager import DEFAULT_CACHE_HEAD_START
from tests.secret_values import known_secret

AUTOCONFIG_KEY = known_secret("rel-0123456789abcdef-test-key")
FAST = BackoffPolicy(base=0.01, maximum=0.05, jitter=0.5, reset_after=60.0)
FAST_RESYNC = BackoffPolicy(base=0.01, maximum=0.05, jitter=0.5, reset_after=0.0)


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0, what: str = ""
) -> None:
    """Wait until ``predicate`` holds (polling); fail with ``what`` if it never does.

    The timeout is a safety net against hanging, not a performance assertion.
    """

    async def poll() -> None:
        while True:
            result = predicate()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"condition never held: {what or predicate}")


class RecordingHandler:
    """Records every call as a tuple; lets a test wait for a call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._changed = asyncio.Event()

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        self._changed.set()

    def on_environment_added(self, env: Environment) -> None:
        self._record("env_added", env.env_id, env.version)

    def on_environment_updated(self, env: Environment) -> None:
        self._record("env_updated", env.env_id, env.version)

    def on_environment_deleted(self, env: Environment) -> None:
        self._record("env_deleted", env.env_id, env.version)

    def on_filter_added(self, filter: Filter) -> None:
        self._record("filter_added", filter.filter_id, filter.version)

    def on_filter_updated(self, filter: Filter) -> None:
        self._record("filter_updated", filter.filter_id, filter.version)

    def on_filter_deleted(self, filter: Filter) -> None:
        self._record("filter_deleted", filter.filter_id, filter.version)

    async def on_all_environments_received(self, source: SnapshotSource) -> None:
        # async on purpose: the manager must accept both kinds of method.
        self._record("all_received", str(source))

    async def wait_for(self, call: tuple[Any, ...], timeout: float = 10.0) -> int:
        """Wait until ``call`` has been recorded; return its index."""

        async def poll() -> int:
            while call not in self.calls:
                self._changed.clear()
                await self._changed.wait()
            return self.calls.index(call)

        try:
            return await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            pytest.fail(f"handler never got {call}; got {self.calls}")

    def since(self, index: int) -> list[tuple[Any, ...]]:
        """Calls recorded after position ``index``."""
        return self.calls[index + 1 :]


class CountingStore(MemoryStore):
    """A memory store that counts writes and can be made to fail (a real outage of sorts)."""

    def __init__(self) -> None:
        super().__init__(None, "test")
        self.writes = 0
        self.failing = False
        self.failed_calls = 0

    def _maybe_fail(self) -> None:
        if self.failing:
            self.failed_calls += 1
            raise StoreUnavailableError("test store is down (simulated outage)")

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        self._maybe_fail()
        return await super().cache_get_all()

    @hookimpl
    async def cache_set_all(self, records: Any, rewrite_unchanged: bool) -> None:
        self._maybe_fail()
        self.writes += 1
        await super().cache_set_all(records, rewrite_unchanged)

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        self._maybe_fail()
        self.writes += 1
        return await super().cache_upsert(record)

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        self._maybe_fail()
        self.writes += 1
        return await super().cache_delete(field, version)


class GatedStore(CountingStore):
    """A store whose reads wait for ``gate`` (a slow store), noting whether they were cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.read_started = asyncio.Event()
        self.read_cancelled = False

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        self.read_started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.read_cancelled = True
            raise
        return await super().cache_get_all()


def make_cache(store: object | None) -> AutoConfigCache:
    """A real cache facade over ``store`` (``None``: caching off)."""
    return AutoConfigCache(store, cache_key="test", keys=KeyRing.from_strings("test-encryption"))


async def stored_snapshot(store: object) -> Snapshot:
    """What ``store`` holds, decoded by a fresh facade."""
    reader = make_cache(store)
    return (await reader.get_all()).snapshot  # not closed: that would close the shared store


def versions(snapshot: Snapshot) -> dict[str, int]:
    """``{"env:<id>": version, "filter:<id>": version}`` of a snapshot, to compare states."""
    out = {f"env:{k}": v.version for k, v in snapshot.environments.items()}
    out.update({f"filter:{k}": v.version for k, v in snapshot.filters.items()})
    return out


def put_versions(put_data: dict[str, Any]) -> dict[str, int]:
    """The same view of a server's put data."""
    out = {f"env:{k}": v["version"] for k, v in put_data.get("environments", {}).items()}
    out.update({f"filter:{k}": v["version"] for k, v in put_data.get("filters", {}).items()})
    return out


@pytest.fixture
async def server() -> AsyncIterator[StreamServer]:
    srv = StreamServer({}, autoconfig_key=AUTOCONFIG_KEY)
    await srv.start()
    yield srv
    await srv.close()


def make_manager(
    server: StreamServer,
    handler: Any,
    cache: AutoConfigCache | None = None,
    *,
    read_timeout: float = 30.0,
    cache_head_start: float = DEFAULT_CACHE_HEAD_START,
) -> StreamManager:
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, read_timeout=read_timeout)
    return StreamManager(
        cache if cache is not None else AutoConfigCache.null(),
        handler,
        client=client,
        resync_backoff=FAST_RESYNC,
        cache_head_start=cache_head_start,
    )


class ControlledSleep:
    """Stands in for ``asyncio.sleep`` between attempts: records each delay instead of waiting
    it, lets ``budget`` calls return at once and holds the next ones until :meth:`allow`. The
    schedule is then checked value by value, with no wall-clock time involved."""

    def __init__(self, budget: int = 0) -> None:
        self.delays: list[float] = []
        self._budget = budget
        self._changed = asyncio.Condition()

    async def __call__(self, delay: float) -> None:
        async with self._changed:
            self.delays.append(delay)
            self._changed.notify_all()
            await self._changed.wait_for(lambda: self._budget > 0)
            self._budget -= 1

    async def allow(self, calls: int = 1) -> None:
        async with self._changed:
            self._budget += calls
            self._changed.notify_all()

    async def wait_for_delays(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.delays) >= count), 10)


async def fetch_status_and_metrics(manager: StreamManager) -> tuple[str, str]:
    """The ``/status`` and ``/metrics`` texts, over HTTP from a status server started for it."""
    status_server = StatusServer(
        manager, store_scheme="none", store_format="v2", host="127.0.0.1", port=0
    )
    await status_server.start()
    try:
        base = f"http://127.0.0.1:{status_server.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/status") as response:
                status_text = await response.text()
            async with http.get(f"{base}/metrics") as response:
                metrics_text = await response.text()
    finally:
        await status_server.close()
    return status_text, metrics_text
