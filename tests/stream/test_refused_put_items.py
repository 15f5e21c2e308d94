"""An item a stream ``put`` refuses as malformed keeps its previous state in the store too, as the
Relay Proxy v9 does (ld-relay ``internal/autoconfig/stream_manager.go``, ``persistPut``): the
copy this process knew, or else the copy the store holds, even one this process never loaded.

Everything runs against the local stream server over loopback and real memory stores behind the
real cache facade.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.errors import StoreUnavailableError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.models import Snapshot
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.stream import StreamServer
from tests.items import concurrent_env_json

from .conftest import (
    CountingStore,
    GatedStore,
    RecordingHandler,
    eventually,
    make_cache,
    make_manager,
    stored_snapshot,
    versions,
)


def malformed(env_id: str, version: int) -> dict[str, Any]:
    """An environment whose credential set the Relay Proxy v9 refuses (``sdkKey.value`` is not
    among the ``sdkKeys`` values)."""
    data = concurrent_env_json(env_id, version)
    data["sdkKeys"] = data["sdkKeys"][1:]
    return data


async def seed(store: object, data: dict[str, Any]) -> AutoConfigCache:
    cache = make_cache(store)
    snapshot, problems = Snapshot.from_put_data(data)
    assert not problems
    await cache.set_all(snapshot)
    return cache


async def store_holds(store: object, expected: dict[str, int]) -> bool:
    return versions(await stored_snapshot(store)) == expected


class ReadFailingStore(CountingStore):
    """A memory store whose reads fail while ``fail_reads`` is set; writes still work."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_reads = False

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        if self.fail_reads:
            self.failed_calls += 1
            raise StoreUnavailableError("test store cannot be read (simulated)")
        return await super().cache_get_all()


async def test_a_refused_environment_this_process_never_loaded_keeps_its_stored_copy(
    server: StreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    good = concurrent_env_json("e1", 1)
    store = GatedStore()
    cache = await seed(store, {"environments": {"e1": good, "e2": concurrent_env_json("e2", 1)}})
    server.set_snapshot(
        {"environments": {"e1": malformed("e1", 2), "e2": concurrent_env_json("e2", 2)}}
    )
    handler = RecordingHandler()
    with caplog.at_level(logging.WARNING, logger="autoconfig_cache"):
        async with make_manager(server, handler, cache):
            # The store's read is held back: the stream's put wins and cancels it, so this
            # process never learns the stored e1.
            await handler.wait_for(("all_received", "stream"))
            await eventually(lambda: store.read_cancelled, what="the cache read cancelled")
            store.gate.set()
            await eventually(
                lambda: store_holds(store, {"env:e1": 1, "env:e2": 2}), what="e1 kept, e2 written"
            )
    assert (await stored_snapshot(store)).environments["e1"].raw == good
    assert not any(call[0] == "env_deleted" for call in handler.calls)
    assert "env:e1" in caplog.text and "the store keeps its copy" in caplog.text


async def test_a_refused_environment_known_from_an_earlier_put_keeps_that_state_in_the_store(
    server: StreamServer,
) -> None:
    good = concurrent_env_json("e1", 1)
    server.set_snapshot({"environments": {"e1": good}})
    store = CountingStore()
    handler = RecordingHandler()
    async with make_manager(server, handler, make_cache(store)) as manager:
        await handler.wait_for(("all_received", "stream"))
        await server.push_put(
            {"environments": {"e1": malformed("e1", 2), "e2": concurrent_env_json("e2", 1)}}
        )
        await handler.wait_for(("env_added", "e2", 1))
        await eventually(lambda: store_holds(store, {"env:e1": 1, "env:e2": 1}))
        env = manager.get_environment("e1")
        assert env is not None and env.raw == good
    assert (await stored_snapshot(store)).environments["e1"].raw == good


async def test_a_store_that_cannot_be_read_is_not_rewritten_without_the_refused_item(
    server: StreamServer,
) -> None:
    good = concurrent_env_json("e1", 1)
    store = ReadFailingStore()
    cache = await seed(store, {"environments": {"e1": good, "e2": concurrent_env_json("e2", 1)}})
    store.writes = 0
    store.fail_reads = True
    server.set_snapshot(
        {"environments": {"e1": malformed("e1", 2), "e2": concurrent_env_json("e2", 2)}}
    )
    handler = RecordingHandler()
    async with make_manager(server, handler, cache) as manager:
        await handler.wait_for(("env_added", "e2", 2))
        # The put's write needs the stored e1 and cannot read it: nothing is written meanwhile.
        await eventually(lambda: manager.status().store_dirty, what="the write deferred")
        assert store.writes == 0
        store.fail_reads = False
        await eventually(lambda: store_holds(store, {"env:e1": 1, "env:e2": 2}))
        await eventually(lambda: not manager.status().store_dirty, what="the write done")
    assert (await stored_snapshot(store)).environments["e1"].raw == good
