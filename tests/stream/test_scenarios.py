"""The Relay Proxy's AutoConfig scenario list, end to end: local stream server → client → manager
→ handler and store. One behaviour per test.

A test that expects *nothing* to happen sends a marker change after the event under test and
waits for it: the stream is processed in order, so once the marker arrived, the event before it
has been handled, and the calls in between are exactly what it caused.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from autoconfig_cache.stream import StreamManager, StreamServer
from tests.items import env_json, filter_json

from .conftest import (
    CountingStore,
    RecordingHandler,
    eventually,
    make_cache,
    make_manager,
    put_versions,
    stored_snapshot,
    versions,
)

_marker_ids = itertools.count(1)


class Harness:
    def __init__(
        self,
        server: StreamServer,
        handler: RecordingHandler,
        manager: StreamManager,
        store: CountingStore,
    ) -> None:
        self.server = server
        self.handler = handler
        self.manager = manager
        self.store = store

    async def mark(self) -> int:
        """Send a marker filter and wait for it; return its position in the handler's calls."""
        marker = f"zz-marker-{next(_marker_ids)}"
        await self.server.push_patch(f"/filters/{marker}", filter_json(1))
        return await self.handler.wait_for(("filter_added", marker, 1))

    async def calls_caused_by(self, send: Any) -> list[tuple[Any, ...]]:
        """The handler calls caused by ``await send()``, delimited by markers."""
        before = await self.mark()
        await send()
        after = await self.mark()
        return self.handler.calls[before + 1 : after]

    async def put(self, data: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Push a put and return the handler calls it caused (ending with all_received)."""
        before = len(self.handler.calls)
        await self.server.push_put(data)
        await eventually(
            lambda: (
                len(self.handler.calls) > before
                and self.handler.calls[-1] == ("all_received", "stream")
            ),
            what="the put was applied",
        )
        return self.handler.calls[before:]

    async def store_settled(self) -> None:
        """Wait until the store holds what the manager holds."""

        async def same() -> bool:
            status = self.manager.status()
            if status.pending_writes or status.store_dirty:
                return False
            return versions(await stored_snapshot(self.store)) == versions(self.manager.snapshot())

        await eventually(same, what="store equals memory")


INITIAL = {
    "environments": {"e1": env_json("e1", 10), "e2": env_json("e2", 20)},
    "filters": {"f1": filter_json(5)},
}


@pytest.fixture
async def harness(server: StreamServer) -> AsyncIterator[Harness]:
    server.set_snapshot(INITIAL)
    handler = RecordingHandler()
    store = CountingStore()
    manager = make_manager(server, handler, make_cache(store))
    await manager.start()
    await handler.wait_for(("all_received", "stream"))
    yield Harness(server, handler, manager, store)
    await manager.close()


# ---- put ----------------------------------------------------------------------------------------


async def test_put_into_empty_state_adds_everything(server: StreamServer) -> None:
    server.set_snapshot(INITIAL)
    handler = RecordingHandler()
    store = CountingStore()
    async with make_manager(server, handler, make_cache(store)) as manager:
        await handler.wait_for(("all_received", "stream"))
        assert sorted(handler.calls[:-1]) == [
            ("env_added", "e1", 10),
            ("env_added", "e2", 20),
            ("filter_added", "f1", 5),
        ]
        assert handler.calls[-1] == ("all_received", "stream")
        assert versions(manager.snapshot()) == put_versions(INITIAL)
        await Harness(server, handler, manager, store).store_settled()
        assert versions(await stored_snapshot(store)) == put_versions(INITIAL)


async def test_put_adds_new_environment(harness: Harness) -> None:
    data = {**INITIAL, "environments": {**INITIAL["environments"], "e3": env_json("e3", 1)}}
    assert await harness.put(data) == [("env_added", "e3", 1), ("all_received", "stream")]


async def test_put_updates_environment_with_higher_version(harness: Harness) -> None:
    data = {**INITIAL, "environments": {**INITIAL["environments"], "e1": env_json("e1", 11)}}
    assert await harness.put(data) == [("env_updated", "e1", 11), ("all_received", "stream")]
    await harness.store_settled()
    assert versions(await stored_snapshot(harness.store))["env:e1"] == 11


async def test_put_ignores_environment_with_older_version(harness: Harness) -> None:
    data = {**INITIAL, "environments": {**INITIAL["environments"], "e1": env_json("e1", 9)}}
    assert await harness.put(data) == [("all_received", "stream")]
    env = harness.manager.get_environment("e1")
    assert env is not None and env.version == 10


async def test_put_deletes_environments_and_filters_it_lacks(harness: Harness) -> None:
    data = {"environments": {"e1": INITIAL["environments"]["e1"]}, "filters": {}}
    calls = await harness.put(data)
    assert sorted(calls[:-1]) == [("env_deleted", "e2", 20), ("filter_deleted", "f1", 5)]
    assert harness.manager.get_environment("e2") is None
    await harness.store_settled()
    assert versions(await stored_snapshot(harness.store)) == {"env:e1": 10}


async def test_put_with_unrecognized_path_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_event(
            "put", '{"path": "/other", "data": {"environments": {}, "filters": {}}}'
        )

    assert await harness.calls_caused_by(send) == []
    assert harness.manager.get_environment("e1") is not None


async def test_put_environment_whose_id_mismatches_its_key_is_ignored(harness: Harness) -> None:
    data = {**INITIAL, "environments": {**INITIAL["environments"], "e3": env_json("other", 1)}}
    assert await harness.put(data) == [("all_received", "stream")]
    assert harness.manager.get_environment("e3") is None
    assert harness.manager.get_environment("other") is None


# ---- patch --------------------------------------------------------------------------------------


async def test_patch_adds_new_environment(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_patch("/environments/e3", env_json("e3", 1))

    assert await harness.calls_caused_by(send) == [("env_added", "e3", 1)]
    await harness.store_settled()
    assert versions(await stored_snapshot(harness.store))["env:e3"] == 1


async def test_patch_updates_environment(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_patch("/environments/e1", env_json("e1", 11))

    assert await harness.calls_caused_by(send) == [("env_updated", "e1", 11)]


async def test_patch_with_older_version_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_patch("/environments/e1", env_json("e1", 10))
        await harness.server.push_patch("/environments/e1", env_json("e1", 3))

    assert await harness.calls_caused_by(send) == []
    env = harness.manager.get_environment("e1")
    assert env is not None and env.version == 10


async def test_patch_older_than_delete_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/environments/e1", 12)
        await harness.server.push_patch("/environments/e1", env_json("e1", 11))

    assert await harness.calls_caused_by(send) == [("env_deleted", "e1", 10)]
    assert harness.manager.get_environment("e1") is None


async def test_patch_higher_than_delete_is_an_add(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/environments/e1", 12)
        await harness.server.push_patch("/environments/e1", env_json("e1", 13))

    assert await harness.calls_caused_by(send) == [
        ("env_deleted", "e1", 10),
        ("env_added", "e1", 13),
    ]
    await harness.store_settled()
    assert versions(await stored_snapshot(harness.store))["env:e1"] == 13


async def test_patch_environment_whose_id_mismatches_its_path_is_ignored(
    harness: Harness,
) -> None:
    async def send() -> None:
        await harness.server.push_event(
            "patch", '{"path": "/environments/e9", "data": ' + _dumps(env_json("e1", 50)) + "}"
        )

    assert await harness.calls_caused_by(send) == []
    assert harness.manager.get_environment("e9") is None
    env = harness.manager.get_environment("e1")
    assert env is not None and env.version == 10


async def test_patch_with_unrecognized_path_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_event("patch", '{"path": "/segments/s1", "data": {}}')

    assert await harness.calls_caused_by(send) == []


# ---- delete -------------------------------------------------------------------------------------


async def test_delete_environment(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/environments/e2", 21)

    assert await harness.calls_caused_by(send) == [("env_deleted", "e2", 20)]
    await harness.store_settled()
    assert "env:e2" not in versions(await stored_snapshot(harness.store))


async def test_delete_with_older_version_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/environments/e2", 19)

    assert await harness.calls_caused_by(send) == []
    assert harness.manager.get_environment("e2") is not None


async def test_delete_of_already_deleted_environment_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/environments/e2", 21)
        await harness.server.push_delete("/environments/e2", 22)

    assert await harness.calls_caused_by(send) == [("env_deleted", "e2", 20)]


async def test_delete_of_unknown_environment_leaves_a_tombstone(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/environments/e7", 5)
        await harness.server.push_patch("/environments/e7", env_json("e7", 4))

    assert await harness.calls_caused_by(send) == []
    assert harness.manager.get_environment("e7") is None


# ---- the same for filters -----------------------------------------------------------------------


async def test_put_adds_updates_and_deletes_filters(harness: Harness) -> None:
    data = {**INITIAL, "filters": {"f2": filter_json(1)}}
    calls = await harness.put(data)
    assert sorted(calls[:-1]) == [("filter_added", "f2", 1), ("filter_deleted", "f1", 5)]
    data = {**INITIAL, "filters": {"f2": filter_json(2)}}
    assert await harness.put(data) == [("filter_updated", "f2", 2), ("all_received", "stream")]


async def test_put_ignores_filter_with_older_version(harness: Harness) -> None:
    data = {**INITIAL, "filters": {"f1": filter_json(4)}}
    assert await harness.put(data) == [("all_received", "stream")]
    flt = harness.manager.get_filter("f1")
    assert flt is not None and flt.version == 5


async def test_patch_adds_new_filter(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_patch("/filters/f2", filter_json(1))

    assert await harness.calls_caused_by(send) == [("filter_added", "f2", 1)]


async def test_patch_updates_filter(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_patch("/filters/f1", filter_json(6))

    assert await harness.calls_caused_by(send) == [("filter_updated", "f1", 6)]


async def test_patch_filter_with_older_version_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_patch("/filters/f1", filter_json(4))

    assert await harness.calls_caused_by(send) == []


async def test_patch_filter_older_than_delete_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/filters/f1", 7)
        await harness.server.push_patch("/filters/f1", filter_json(6))

    assert await harness.calls_caused_by(send) == [("filter_deleted", "f1", 5)]


async def test_patch_filter_higher_than_delete_is_an_add(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/filters/f1", 7)
        await harness.server.push_patch("/filters/f1", filter_json(8))

    assert await harness.calls_caused_by(send) == [
        ("filter_deleted", "f1", 5),
        ("filter_added", "f1", 8),
    ]


async def test_delete_filter(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/filters/f1", 6)

    assert await harness.calls_caused_by(send) == [("filter_deleted", "f1", 5)]
    await harness.store_settled()
    assert "filter:f1" not in versions(await stored_snapshot(harness.store))


async def test_delete_filter_with_older_version_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/filters/f1", 5)

    assert await harness.calls_caused_by(send) == []


async def test_delete_of_already_deleted_filter_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/filters/f1", 6)
        await harness.server.push_delete("/filters/f1", 7)

    assert await harness.calls_caused_by(send) == [("filter_deleted", "f1", 5)]


async def test_delete_of_unknown_filter_leaves_a_tombstone(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_delete("/filters/f9", 3)
        await harness.server.push_patch("/filters/f9", filter_json(2))

    assert await harness.calls_caused_by(send) == []


# ---- connection-level events --------------------------------------------------------------------


async def test_reconnect_event_restarts_the_connection(harness: Harness) -> None:
    assert harness.server.connection_count == 1
    await harness.server.push_reconnect()
    await harness.server.wait_for_connections(2)
    # The new connection's put changes nothing: same versions.
    await eventually(lambda: harness.handler.calls.count(("all_received", "stream")) == 2)
    assert versions(harness.manager.snapshot()) == put_versions(INITIAL)


async def test_unknown_event_is_ignored(harness: Harness) -> None:
    async def send() -> None:
        await harness.server.push_event("something-new", '{"path": "/", "data": {}}')

    assert await harness.calls_caused_by(send) == []
    assert harness.server.connection_count == 1


async def test_malformed_json_restarts_the_connection(harness: Harness) -> None:
    await harness.server.push_event("patch", '{"path": "/environments/e1", "data": {')
    await harness.server.wait_for_connections(2)
    env = harness.manager.get_environment("e1")
    assert env is not None and env.version == 10


def _dumps(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data)
