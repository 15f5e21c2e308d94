"""StreamManager: start-up race, persistence, store outages, status, close.

Everything runs against the local stream server over loopback and real store implementations
(memory store subclasses that gate or fail, and the sqlite store) behind the real cache facade.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.stream import SnapshotSource, StreamServer
from tests.items import env_json, filter_json

from .conftest import (
    CountingStore,
    GatedStore,
    RecordingHandler,
    eventually,
    make_cache,
    make_manager,
    put_versions,
    stored_snapshot,
    versions,
)

CACHED = {
    "environments": {"e1": env_json("e1", 10), "e2": env_json("e2", 20)},
    "filters": {"f1": filter_json(5)},
}
STREAM = {
    "environments": {"e1": env_json("e1", 11), "e3": env_json("e3", 1)},
    "filters": {},
}


def snapshot_of(data: dict[str, Any]) -> Snapshot:
    snapshot, problems = Snapshot.from_put_data(data)
    assert not problems
    return snapshot


async def seeded(store: CountingStore, data: dict[str, Any]) -> AutoConfigCache:
    cache = make_cache(store)
    await cache.set_all(snapshot_of(data))
    store.writes = 0
    return cache


async def store_equals(store: object, expected: dict[str, int]) -> bool:
    return versions(await stored_snapshot(store)) == expected


# ---- start-up race ------------------------------------------------------------------------------


async def test_cache_wins_serves_before_the_stream_and_is_not_written_back(
    server: StreamServer,
) -> None:
    store = CountingStore()
    cache = await seeded(store, CACHED)
    server.set_snapshot(STREAM)
    server.hold_put()
    handler = RecordingHandler()
    async with make_manager(server, handler, cache) as manager:
        await handler.wait_for(("all_received", "cache"))
        await server.wait_for_connections(1)  # connected, put held back
        status = manager.status()
        assert status.ready and status.source is SnapshotSource.CACHE
        assert versions(manager.snapshot()) == put_versions(CACHED)
        assert status.cache_load is not None and status.cache_load.environments == 2
        assert status.cached_data_age_seconds is not None
        assert store.writes == 0  # the cache's own data is not written back

        server.release_put()
        done = await handler.wait_for(("all_received", "stream"))
        after_cache = handler.calls[handler.calls.index(("all_received", "cache")) + 1 : done]
        assert sorted(after_cache) == [
            ("env_added", "e3", 1),
            ("env_deleted", "e2", 20),
            ("env_updated", "e1", 11),
            ("filter_deleted", "f1", 5),
        ]
        assert manager.source is SnapshotSource.STREAM
        await eventually(
            lambda: store_equals(store, put_versions(STREAM)), what="the stream's put persisted"
        )


async def test_stream_put_wins_cancels_the_cache_read_and_discards_it(
    server: StreamServer,
) -> None:
    store = GatedStore()
    cache = await seeded(store, {"environments": {"cache-only": env_json("cache-only", 1)}})
    server.set_snapshot(STREAM)
    handler = RecordingHandler()
    async with make_manager(server, handler, cache) as manager:
        await store.read_started.wait()
        await handler.wait_for(("all_received", "stream"))
        assert store.read_cancelled
        assert manager.status().cache_read_cancelled
        store.gate.set()  # a late answer from the store must change nothing
        await eventually(
            lambda: store_equals(store, put_versions(STREAM)), what="the stream's put persisted"
        )
        assert ("all_received", "cache") not in handler.calls
        assert not any(call[1] == "cache-only" for call in handler.calls)
        assert versions(manager.snapshot()) == put_versions(STREAM)


@pytest.mark.parametrize("status", [503, 401])
async def test_stream_down_for_good_the_cache_serves(server: StreamServer, status: int) -> None:
    store = CountingStore()
    cache = await seeded(store, CACHED)
    server.reject_with = status
    handler = RecordingHandler()
    async with make_manager(server, handler, cache) as manager:
        await handler.wait_for(("all_received", "cache"))
        if status == 401:
            # Not stopped: retrying on the extended schedule (5 min at first), key masked.
            await eventually(lambda: manager.status().stream_unauthorized, what="401 noted")
            assert manager.status().stream_retry_extended
            task = manager.stream_task
            assert task is not None and not task.done()
        else:
            await server.wait_for_requests(3)
        assert not manager.status().stream_stopped
        state = manager.status()
        assert state.ready and state.source is SnapshotSource.CACHE
        assert not state.stream_connected
        assert str(status) in (state.stream_error or "")
        assert versions(manager.snapshot()) == put_versions(CACHED)
        assert store.writes == 0


async def test_empty_cache_does_not_make_the_manager_ready(server: StreamServer) -> None:
    server.set_snapshot(STREAM)
    server.hold_put()
    handler = RecordingHandler()
    async with make_manager(server, handler, make_cache(CountingStore())) as manager:
        await eventually(lambda: manager.status().cache_load is not None, what="cache read")
        assert not manager.ready.is_set()
        assert manager.source is SnapshotSource.NONE
        server.release_put()
        await asyncio.wait_for(manager.wait_ready(), 10)
        assert manager.status().source is SnapshotSource.STREAM


async def test_restart_from_sqlite_cache_while_stream_is_down(
    server: StreamServer, tmp_path: Path
) -> None:
    url = f"sqlite://{tmp_path / 'cache.db'}"
    server.set_snapshot(STREAM)

    async with AutoConfigCache.open(url, cache_key="t", encryption_key="k-123") as cache:
        handler = RecordingHandler()
        async with make_manager(server, handler, cache) as manager:
            await handler.wait_for(("all_received", "stream"))
            await eventually(lambda: manager.status().last_successful_write_at is not None)

    server.reject_with = 503
    async with AutoConfigCache.open(url, cache_key="t", encryption_key="k-123") as cache:
        handler = RecordingHandler()
        async with make_manager(server, handler, cache) as manager:
            await handler.wait_for(("all_received", "cache"))
            assert versions(manager.snapshot()) == put_versions(STREAM)


# ---- persistence and store outages ---------------------------------------------------------------


async def test_patch_and_delete_are_written_to_the_store(server: StreamServer) -> None:
    server.set_snapshot(CACHED)
    store = CountingStore()
    handler = RecordingHandler()
    async with make_manager(server, handler, make_cache(store)):
        await handler.wait_for(("all_received", "stream"))
        await server.push_patch("/environments/e3", env_json("e3", 2))
        await server.push_delete("/environments/e1", 11)
        await server.push_patch("/filters/f2", filter_json(1))
        await handler.wait_for(("filter_added", "f2", 1))
        await eventually(
            lambda: store_equals(store, put_versions(server.snapshot)),
            what="store equals the stream's state",
        )


async def test_store_outage_then_recovery_ends_equal_to_the_stream(server: StreamServer) -> None:
    server.set_snapshot(CACHED)
    store = CountingStore()
    handler = RecordingHandler()
    async with make_manager(server, handler, make_cache(store)) as manager:
        await handler.wait_for(("all_received", "stream"))
        await eventually(lambda: store_equals(store, put_versions(CACHED)))

        store.failing = True
        await server.push_patch("/environments/e3", env_json("e3", 1))
        await server.push_delete("/environments/e1", 11)
        await handler.wait_for(("env_deleted", "e1", 10))
        await eventually(lambda: manager.status().store_dirty, what="store marked dirty")
        # The stream goes on while the store is down.
        await server.push_patch("/environments/e2", env_json("e2", 21))
        await server.push_patch("/filters/f1", filter_json(6))
        await handler.wait_for(("filter_updated", "f1", 6))
        failed_before = store.failed_calls
        await eventually(lambda: store.failed_calls > failed_before, what="a resync attempt")
        assert manager.status().store_dirty

        store.failing = False
        await eventually(lambda: not manager.status().store_dirty, what="store resynchronised")
        await server.push_patch("/environments/e4", env_json("e4", 1))
        await handler.wait_for(("env_added", "e4", 1))
        await eventually(
            lambda: store_equals(store, put_versions(server.snapshot)),
            what="store equals the stream's state",
        )
        status = manager.status()
        assert status.store_error_count >= 2
        assert status.resync_count >= 1
        assert status.last_store_error is not None and "simulated outage" in status.last_store_error
        assert versions(manager.snapshot()) == put_versions(server.snapshot)


async def test_store_down_at_start_is_resynchronised_when_it_answers(
    server: StreamServer,
) -> None:
    server.set_snapshot(STREAM)
    store = CountingStore()
    store.failing = True
    handler = RecordingHandler()
    async with make_manager(server, handler, make_cache(store)) as manager:
        await handler.wait_for(("all_received", "stream"))
        assert manager.status().source is SnapshotSource.STREAM
        await eventually(lambda: manager.status().store_error_count >= 2)
        store.failing = False
        await eventually(
            lambda: store_equals(store, put_versions(STREAM)), what="store written once it answers"
        )


class FailingHandler(RecordingHandler):
    def on_environment_added(self, env: Environment) -> None:
        super().on_environment_added(env)
        raise RuntimeError("handler bug")


async def test_handler_errors_do_not_stop_the_stream_or_the_store(server: StreamServer) -> None:
    server.set_snapshot(CACHED)
    store = CountingStore()
    handler = FailingHandler()
    async with make_manager(server, handler, make_cache(store)):
        await handler.wait_for(("all_received", "stream"))
        await server.push_patch("/environments/e3", env_json("e3", 1))
        await server.push_patch("/environments/e3", env_json("e3", 2))
        await handler.wait_for(("env_updated", "e3", 2))
        await eventually(lambda: store_equals(store, put_versions(server.snapshot)))
        assert server.connection_count == 1


async def test_put_keeps_a_known_item_that_arrives_malformed(server: StreamServer) -> None:
    server.set_snapshot(CACHED)
    handler = RecordingHandler()
    async with make_manager(server, handler) as manager:
        await handler.wait_for(("all_received", "stream"))
        broken = {k: v for k, v in CACHED["environments"]["e1"].items() if k != "envKey"}
        await server.push_put({**CACHED, "environments": {**CACHED["environments"], "e1": broken}})
        await eventually(lambda: handler.calls.count(("all_received", "stream")) == 2)
        assert manager.get_environment("e1") is not None
        assert ("env_deleted", "e1", 10) not in handler.calls


# ---- logging, status, close ---------------------------------------------------------------------


async def test_debug_logs_mask_sdk_and_mobile_keys(
    server: StreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    env = env_json("e9", 1)
    server.set_snapshot({"environments": {"e9": env}})
    handler = RecordingHandler()
    with caplog.at_level(logging.DEBUG, logger="autoconfig_cache"):
        async with make_manager(server, handler):
            await handler.wait_for(("all_received", "stream"))
            await server.push_patch("/environments/e9", {**env, "version": 2})
            await handler.wait_for(("env_updated", "e9", 2))
    sdk_key, mob_key = env["sdkKey"]["value"], env["mobKey"]
    assert "e9" in caplog.text  # the events were logged ...
    assert sdk_key[-4:] in caplog.text  # ... with masked keys ...
    assert sdk_key not in caplog.text and mob_key not in caplog.text  # ... never in clear


async def test_status_reports_stream_and_store_state(server: StreamServer) -> None:
    server.set_snapshot(CACHED)
    handler = RecordingHandler()
    async with make_manager(server, handler, make_cache(CountingStore())) as manager:
        await handler.wait_for(("all_received", "stream"))
        await eventually(lambda: manager.status().last_successful_write_at is not None)
        status = manager.status()
        assert status.stream_connected and status.last_event_at is not None
        assert (status.environments, status.filters) == (2, 1)
        assert status.store_error_count == 0 and not status.store_dirty
        assert status.source is SnapshotSource.STREAM


async def test_close_is_idempotent_and_leaves_no_task(server: StreamServer) -> None:
    server.set_snapshot(CACHED)
    handler = RecordingHandler()
    manager = make_manager(server, handler, make_cache(CountingStore()))
    await manager.start()
    await handler.wait_for(("all_received", "stream"))
    tasks = list(manager._tasks.values())
    await manager.close()
    await manager.close()
    assert all(task.done() for task in tasks)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("autoconfig-")]
    await eventually(lambda: server.open_connections == 0, what="client disconnected")


async def test_close_cancels_a_cache_read_in_flight(server: StreamServer) -> None:
    store = GatedStore()
    server.hold_put()
    manager = make_manager(server, RecordingHandler(), make_cache(store))
    await manager.start()
    await store.read_started.wait()
    await manager.close()
    assert store.read_cancelled


# ---- tombstones ---------------------------------------------------------------------------------


async def tombstones_in(store: object) -> dict[str, int]:
    return {t.item_id: t.version for t in (await stored_snapshot(store)).tombstones}


async def test_a_delete_is_stored_as_a_tombstone_that_a_restarted_manager_honours(
    server: StreamServer,
) -> None:
    server.set_snapshot(CACHED)
    store = CountingStore()
    async with make_manager(server, RecordingHandler(), make_cache(store)) as first:
        await first.wait_ready()
        await server.push_delete("/environments/e2", 21)
        await eventually(lambda: tombstones_in(store), what="the delete is stored as a tombstone")
        assert await tombstones_in(store) == {"e2": 21}
    # A new instance starts from the store while LaunchDarkly is down; when the stream is back
    # it replays an older patch of the deleted item, which must not bring it back.
    server.reject_with = 503
    handler = RecordingHandler()
    async with make_manager(server, handler, make_cache(store)) as second:
        await handler.wait_for(("all_received", "cache"))
        assert "e2" not in second.snapshot().environments
        server.reject_with = None
        await handler.wait_for(("all_received", "stream"))
        await server.push_patch("/environments/e2", env_json("e2", 20))
        await server.push_patch("/environments/e3", env_json("e3", 1))  # a marker after it
        await handler.wait_for(("env_added", "e3", 1))
        assert not [call for call in handler.calls if call[1:2] == ("e2",) and "added" in call[0]]
        assert "e2" not in second.snapshot().environments
        assert "env:e2" not in versions(await stored_snapshot(store))


async def test_stream_connects_only_once_the_cache_read_has_ended(server: StreamServer) -> None:
    store = GatedStore()
    cache = await seeded(store, {"environments": {"cache-only": env_json("cache-only", 1)}})
    server.set_snapshot(STREAM)
    handler = RecordingHandler()
    async with make_manager(server, handler, cache, cache_head_start=60) as manager:
        await store.read_started.wait()
        # Long enough for a connection on loopback to have been made many times over.
        await asyncio.sleep(0.3)
        assert server.request_count == 0
        assert manager.status().stream_connections == 0
        store.gate.set()  # the read ends: the cache is served, then the stream connects
        await handler.wait_for(("all_received", "cache"))
        await handler.wait_for(("all_received", "stream"))
        assert server.request_count >= 1


async def test_stream_connects_after_the_head_start_when_the_cache_read_hangs(
    server: StreamServer,
) -> None:
    store = GatedStore()  # its read never ends until the gate opens, which nothing does here
    cache = await seeded(store, {"environments": {"cache-only": env_json("cache-only", 1)}})
    server.set_snapshot(STREAM)
    handler = RecordingHandler()
    async with make_manager(server, handler, cache, cache_head_start=0.2) as manager:
        await handler.wait_for(("all_received", "stream"))
        assert store.read_cancelled and manager.status().cache_read_cancelled
        assert versions(manager.snapshot()) == put_versions(STREAM)
