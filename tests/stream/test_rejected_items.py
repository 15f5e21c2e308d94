"""Items no store can hold, sent by the stream, are refused one by one and counted; the rest of
the event applies and the store keeps being written.

Before: a ``put`` with one environment at version 2**62 was accepted, and every later write of
the SQLite store failed on it; a lone surrogate in one environment's name refused the whole
``put`` (and the next one, on every reconnect). Everything here runs against the local stream
server over loopback and a real SQLite store behind the real cache facade.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.models import Snapshot
from autoconfig_cache.stream import StreamManager, StreamServer
from autoconfig_cache.stream.events import MalformedEventError, parse_event
from autoconfig_cache.stream.sse import ServerSentEvent
from tests.items import env_json, filter_json

from .conftest import RecordingHandler, eventually, fetch_status_and_metrics, make_manager

LONG_ID = "x" * 1100  # over DynamoDB's 1,024-byte sort key once prefixed, over MAX_ID_BYTES
ENCRYPTION_KEY = "rejected-items-test-key"

GOOD_ENVS = {"e1": env_json("e1", 3), "e2": env_json("e2", 7)}
GOOD_FILTERS = {"f1": filter_json(2)}
HOSTILE_PUT: dict[str, Any] = {
    "environments": {
        **GOOD_ENVS,
        "huge": env_json("huge", 2**62),
        "surrogate": env_json("surrogate", 1, envName="\ud800"),
        LONG_ID: env_json(LONG_ID, 1),
        "negative": env_json("negative", -1),
    },
    "filters": {**GOOD_FILTERS, "f-huge": filter_json(2**53)},
}
HOSTILE_COUNT = 5


def good_versions() -> dict[str, int]:
    out = {f"env:{k}": v["version"] for k, v in GOOD_ENVS.items()}
    out.update({f"filter:{k}": v["version"] for k, v in GOOD_FILTERS.items()})
    return out


def versions_of(snapshot: Snapshot) -> dict[str, int]:
    out = {f"env:{k}": v.version for k, v in snapshot.environments.items()}
    out.update({f"filter:{k}": v.version for k, v in snapshot.filters.items()})
    return out


@pytest.fixture
async def sqlite_cache(tmp_path: Path) -> AsyncIterator[AutoConfigCache]:
    async with AutoConfigCache.open(
        f"sqlite://{tmp_path / 'cache.db'}", cache_key="t", encryption_key=ENCRYPTION_KEY
    ) as cache:
        yield cache


async def stored(tmp_path: Path) -> Snapshot:
    """What the SQLite file holds, read by a fresh cache."""
    async with AutoConfigCache.open(
        f"sqlite://{tmp_path / 'cache.db'}", cache_key="t", encryption_key=ENCRYPTION_KEY
    ) as cache:
        result = await cache.get_all()
    assert not result.report.skipped  # nothing unreadable was written either
    return result.snapshot


async def written(manager: StreamManager) -> None:
    await eventually(
        lambda: (
            manager.status().last_successful_write_at is not None
            and manager.status().pending_writes == 0
        ),
        what="the put written to the store",
    )


async def test_a_put_keeps_its_good_items_and_counts_the_invalid_ones(
    server: StreamServer,
    sqlite_cache: AutoConfigCache,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.set_snapshot(HOSTILE_PUT)
    handler = RecordingHandler()
    with caplog.at_level(logging.WARNING, logger="autoconfig_cache.stream"):
        async with make_manager(server, handler, sqlite_cache) as manager:
            await handler.wait_for(("all_received", "stream"))
            await written(manager)
            assert versions_of(manager.snapshot()) == good_versions()
            state = manager.status()
            assert state.store_error_count == 0 and not state.store_dirty
            assert state.stream_connections == 1  # the put was not refused: no reconnect
            assert state.stream_rejected_items == HOSTILE_COUNT

            # Still running: a later good patch is applied and written.
            await server.push_patch("/environments/e3", env_json("e3", 1))
            await handler.wait_for(("env_added", "e3", 1))
            await eventually(lambda: manager.status().pending_writes == 0)
            status_text, metrics = await fetch_status_and_metrics(manager)
    assert versions_of(await stored(tmp_path)) == {**good_versions(), "env:e3": 1}

    assert json.loads(status_text)["stream"]["rejectedItems"] == HOSTILE_COUNT
    assert "# TYPE autoconfig_cache_stream_rejected_items_total counter" in metrics
    assert f"autoconfig_cache_stream_rejected_items_total {HOSTILE_COUNT}" in metrics.splitlines()

    # Each refusal is a warning naming the item, escaped, never the raw 1,100-character id.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for fragment in ("'huge'", "'surrogate'", "'negative'", "'f-huge'", "(1100 bytes)"):
        assert any(fragment in line for line in warnings), fragment
    assert not any(LONG_ID in line for line in warnings)


async def test_an_invalid_patch_or_delete_is_skipped_and_counted(
    server: StreamServer, sqlite_cache: AutoConfigCache, tmp_path: Path
) -> None:
    server.set_snapshot({"environments": dict(GOOD_ENVS), "filters": dict(GOOD_FILTERS)})
    handler = RecordingHandler()
    async with make_manager(server, handler, sqlite_cache) as manager:
        await handler.wait_for(("all_received", "stream"))
        await written(manager)
        hostile = [
            ("patch", {"path": "/environments/e1", "data": env_json("e1", 2**62)}),
            ("patch", {"path": f"/environments/{LONG_ID}", "data": env_json(LONG_ID, 9)}),
            ("patch", {"path": "/environments/e2", "data": env_json("e2", 8, envName="\ud800")}),
            ("patch", {"path": "/filters/f1", "data": filter_json(-1)}),
            ("delete", {"path": "/environments/e1", "version": 2**62}),
            ("delete", {"path": "/environments/e2", "version": -1}),
            ("delete", {"path": "/filters/f1\nINFO forged", "version": 9}),
        ]
        for event_type, body in hostile:
            # json.dumps writes the lone surrogate as the escape \ud800, as a server would.
            await server.push_event(event_type, json.dumps(body))
        # Events are handled in order: once this one is applied, the ones above were handled.
        await server.push_patch("/environments/e3", env_json("e3", 1))
        await handler.wait_for(("env_added", "e3", 1))
        await eventually(lambda: manager.status().pending_writes == 0)

        expected = {**good_versions(), "env:e3": 1}
        assert versions_of(manager.snapshot()) == expected
        assert manager.snapshot().tombstones == ()
        state = manager.status()
        assert state.stream_rejected_items == len(hostile)
        assert state.store_error_count == 0 and not state.store_dirty
        assert state.stream_connections == 1  # skipped, not a reason to reconnect
    assert versions_of(await stored(tmp_path)) == expected


def test_nesting_deeper_than_the_limit_still_refuses_the_whole_put() -> None:
    # No item can be parsed out of it safely, so the event is malformed (and reconnected).
    deep = "[" * 2000 + "]" * 2000
    data = (
        '{"path": "/", "data": {"environments": {"e1": '
        + json.dumps(env_json("e1"))[:-1]
        + f', "x": {deep}}}}}, "filters": {{}}}}}}'
    )
    with pytest.raises(MalformedEventError, match="nesting deeper than 1024"):
        parse_event(ServerSentEvent("put", data))


def test_an_orjson_parsed_put_skips_the_string_walk() -> None:
    # The common case: a clean put is checked for ids and versions only, and parses as before.
    body = {"path": "/", "data": {"environments": dict(GOOD_ENVS), "filters": {}}}
    message = parse_event(ServerSentEvent("put", json.dumps(body)))
    assert message is not None and not isinstance(message, MalformedEventError)
    assert getattr(message, "rejected_items", None) == 0
