"""/status renders its item part once per state change, not per request; the detail can be off.

A real local stream server feeds a real :class:`StreamManager`; the status server is queried over
HTTP. Counts of renders are compared with counts of state changes: no timing assertion.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from autoconfig_cache.config import Config
from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.models import Snapshot
from autoconfig_cache.service.runner import Service
from autoconfig_cache.service.status import StatusServer
from autoconfig_cache.stores.memory import MemoryStore
from autoconfig_cache.stream import StreamManager, StreamServer
from tests.cli.conftest import clean_environ
from tests.items import env_json, filter_json
from tests.stream.conftest import (
    AUTOCONFIG_KEY,
    RecordingHandler,
    eventually,
    make_cache,
    make_manager,
)

PUT = {
    "environments": {"e1": env_json("e1", 1), "e2": env_json("e2", 1)},
    "filters": {"f1": filter_json(1)},
}


@pytest.fixture
async def server() -> AsyncIterator[StreamServer]:
    srv = StreamServer({}, autoconfig_key=AUTOCONFIG_KEY)
    await srv.start()
    yield srv
    await srv.close()


async def get_status(status_server: StatusServer) -> dict[str, Any]:
    url = f"http://127.0.0.1:{status_server.port}/status"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        document: dict[str, Any] = json.loads(await response.text())
        return document


async def started(manager: StreamManager, *, environments: bool = True) -> StatusServer:
    status_server = StatusServer(
        manager,
        store_scheme="none",
        store_format="v2",
        host="127.0.0.1",
        port=0,
        environments=environments,
    )
    await status_server.start()
    return status_server


async def test_requests_without_a_change_render_once_and_each_change_renders_once_more(
    server: StreamServer,
) -> None:
    server.set_snapshot(PUT)
    handler = RecordingHandler()
    async with make_manager(server, handler) as manager:
        await handler.wait_for(("all_received", "stream"))
        status_server = await started(manager)
        try:
            for _ in range(5):
                document = await get_status(status_server)
            assert status_server.render_count == 1  # one state change (the put): one render
            assert sorted(document["environments"]) == ["e1", "e2"]
            assert document["environmentCount"] == 2

            await server.push_patch("/environments/e1", env_json("e1", 2))
            await handler.wait_for(("env_updated", "e1", 2))
            for _ in range(3):
                document = await get_status(status_server)
            assert status_server.render_count == 2
            assert document["environments"]["e1"]["version"] == 2  # not the stale rendering

            last_event = document["stream"]["lastEventTime"]
            before = manager.client.state.last_event_at
            # An outdated patch changes nothing held: no render, yet the per-request part moves on.
            await server.push_patch("/environments/e2", env_json("e2", 1))
            await eventually(
                lambda: manager.client.state.last_event_at != before,
                what="the outdated patch was received",
            )
            document = await get_status(status_server)
            assert status_server.render_count == 2
            assert document["stream"]["lastEventTime"] != last_event

            await server.push_delete("/environments/e2", 2)
            await handler.wait_for(("env_deleted", "e2", 1))
            await server.push_patch("/filters/f1", filter_json(2))
            await handler.wait_for(("filter_updated", "f1", 2))
            document = await get_status(status_server)
            document = await get_status(status_server)
            assert status_server.render_count == 3  # two changes between requests: one render
            assert sorted(document["environments"]) == ["e1"]
            assert document["filters"]["f1"]["version"] == 2
        finally:
            await status_server.close()


async def test_a_cache_load_and_a_later_put_are_each_one_render(server: StreamServer) -> None:
    store = MemoryStore()
    seeded = make_cache(store)
    snapshot, problems = Snapshot.from_put_data(PUT)
    assert not problems
    await seeded.set_all(snapshot)
    server.set_snapshot(PUT)
    server.hold_put()  # the stream connects but sends nothing: the cache is what is served
    handler = RecordingHandler()
    async with make_manager(server, handler, make_cache(store)) as manager:
        await handler.wait_for(("all_received", "cache"))
        status_server = await started(manager)
        try:
            document = await get_status(status_server)
            document = await get_status(status_server)
            assert status_server.render_count == 1
            assert document["source"] == "cache"
            assert sorted(document["environments"]) == ["e1", "e2"]

            server.release_put()
            await handler.wait_for(("all_received", "stream"))
            document = await get_status(status_server)
            document = await get_status(status_server)
            assert status_server.render_count == 2
            assert document["source"] == "stream"
        finally:
            await status_server.close()


async def test_environment_detail_off_leaves_the_environments_out_and_keeps_the_count(
    server: StreamServer,
) -> None:
    server.set_snapshot(PUT)
    handler = RecordingHandler()
    async with make_manager(server, handler) as manager:
        await handler.wait_for(("all_received", "stream"))
        status_server = await started(manager, environments=False)
        try:
            document = await get_status(status_server)
        finally:
            await status_server.close()
    assert "environments" not in document
    assert document["environmentCount"] == 2
    assert sorted(document["filters"]) == ["f1"]
    assert document["stream"]["connected"] in (True, False)
    assert document["ready"] is True


def _config(extra: dict[str, str]) -> Config:
    return Config.load(environ=clean_environ({"AUTO_CONFIG_KEY": AUTOCONFIG_KEY, **extra}))


def test_the_status_environments_setting_is_on_by_default_and_reaches_the_status_server() -> None:
    assert _config({}).status_environments is True
    off = _config({"AUTO_CONFIG_CACHE_STATUS_ENVIRONMENTS": "false"})
    assert off.status_environments is False
    assert off.describe()["statusEnvironments"] is False
    assert _config({"AUTO_CONFIG_CACHE_STATUS_ENVIRONMENTS": "on"}).status_environments is True
    assert Service(off).status_server.environments is False
    assert Service(_config({})).status_server.environments is True


def test_a_bad_status_environments_value_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="AUTO_CONFIG_CACHE_STATUS_ENVIRONMENTS"):
        _config({"AUTO_CONFIG_CACHE_STATUS_ENVIRONMENTS": "maybe"})
