"""Hostile input on the stream path: JSON no store can hold, events that never end."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from autoconfig_cache import jsoncodec
from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.stream import ServerSentEvent, StreamClient, StreamManager
from autoconfig_cache.stream.client import STREAM_PATH
from autoconfig_cache.stream.events import MalformedEventError, parse_event

from .conftest import (
    AUTOCONFIG_KEY,
    FAST,
    ControlledSleep,
    RecordingHandler,
    eventually,
    fetch_status_and_metrics,
)

# ---- JSON the standard library would accept but no store can hold -------------------------------

LONE_SURROGATES = [
    '"\\ud800"',
    '{"env": "\\udc00"}',
    '{"\\ud800": 1}',
    # A refusal for another reason first (an integer beyond a double) sends the input to the
    # standard library, which must not let the surrogate through either.
    "[1" + "0" * 400 + ', "\\ud800"]',
    '{"a": NaN, "b": ["\\udfff"]}',
]


@pytest.mark.parametrize("text", LONE_SURROGATES)
def test_a_lone_surrogate_is_a_json_error(text: str) -> None:
    with pytest.raises(jsoncodec.JSONDecodeError):
        jsoncodec.loads(text)
    with pytest.raises(jsoncodec.JSONDecodeError):
        jsoncodec.loads(text.encode())


@pytest.mark.parametrize("depth", [1025, 5_000, 100_000])
def test_deep_nesting_is_a_json_error_not_a_recursion_error(depth: int) -> None:
    for opening, closing in (("[", "]"), ('{"a":', "}")):
        with pytest.raises(jsoncodec.JSONDecodeError):
            jsoncodec.loads(opening * depth + "0" + closing * depth)
        # Also when orjson refuses the input for another reason (NaN) first.
        with pytest.raises(jsoncodec.JSONDecodeError):
            jsoncodec.loads(opening * depth + "NaN" + closing * depth)


def test_a_number_over_the_digit_limit_is_a_json_error() -> None:
    with pytest.raises(jsoncodec.JSONDecodeError):
        jsoncodec.loads("1" + "0" * 5_000)


def test_what_the_standard_library_decides_is_still_accepted() -> None:
    big = 10**400
    assert jsoncodec.loads(f'{{"version": {big}, "name": "\\ud83d\\ude00"}}') == {
        "version": big,
        "name": "\U0001f600",
    }
    value = jsoncodec.loads("[NaN]")[0]
    assert value != value  # NaN, as json.loads gives it
    assert isinstance(jsoncodec.loads("[" * 1024 + "0" + "]" * 1024), list)  # orjson's limit
    assert isinstance(jsoncodec.loads("[" * 500 + "NaN" + "]" * 500), list)


def test_the_depth_rule_holds_when_the_recursion_limit_is_raised() -> None:
    # msgspec recurses under the interpreter's limit: a process that raised it (Hypothesis does,
    # which is how tests/fuzz found this) must still refuse nesting past MAX_DEPTH.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        deepest = "[" * jsoncodec.MAX_DEPTH + "]" * jsoncodec.MAX_DEPTH
        assert isinstance(jsoncodec.loads(deepest), list)
        too_deep = "[" + deepest + "]"
        with pytest.raises(jsoncodec.JSONDecodeError, match="nesting deeper"):
            jsoncodec.loads(too_deep)
        with pytest.raises(jsoncodec.JSONDecodeError, match="nesting deeper"):
            jsoncodec.loads_lenient(too_deep)
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 2**70, 10**300])
def test_integers_beyond_64_bits_stay_exact_integers(number: int) -> None:
    # orjson reads these as floats without an error: an unknown field of an item would be
    # changed on its way through the cache (found by the fuzzing harness, tests/fuzz).
    value = jsoncodec.loads(f'{{"defaultTtl": {number}, "x": [{number}]}}'.encode())
    assert value == {"defaultTtl": number, "x": [number]}
    assert type(value["defaultTtl"]) is int
    lenient, clean = jsoncodec.loads_lenient(f"[{number}]")
    assert lenient == [number] and type(lenient[0]) is int and clean


# A lone surrogate inside one item costs only that item (tests/stream/test_rejected_items.py);
# nesting no walk can survive still refuses the whole event.
@pytest.mark.parametrize("data", ["[" * 100_000 + "]" * 100_000])
def test_a_put_with_such_json_is_a_malformed_event(data: str) -> None:
    with pytest.raises(MalformedEventError, match="not valid JSON"):
        parse_event(ServerSentEvent("put", data))


def test_the_standard_library_alone_accepted_these() -> None:
    # Guards the tests above: they are about inputs the fallback used to let through.
    assert json.loads('"\\ud800"') == "\ud800"
    with pytest.raises(RecursionError):
        json.loads("[" * 100_000 + "]" * 100_000)


# ---- an event that never ends, from a real server over loopback ---------------------------------

PUT = b'event: put\ndata: {"path": "/", "data": {"environments": {}, "filters": {}}}\n\n'
LIMIT = 64 * 1024


class EndlessEventServer:
    """Each connection gets a good ``put``, then a second event whose ``data`` lines never end
    (no line is long, so only a limit on the whole event can stop it)."""

    def __init__(self) -> None:
        self.connections = 0
        self.uri = ""
        self._runner: web.AppRunner | None = None

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        line = b"data: " + b"x" * 1000 + b"\n"
        try:
            await response.write(PUT + b"event: put\n")
            while True:  # until the client hangs up
                await response.write(line * 16)
        except (ConnectionError, RuntimeError):
            pass  # the client dropped the connection, as it should
        return response

    async def __aenter__(self) -> EndlessEventServer:
        app = web.Application()
        app.router.add_get(STREAM_PATH, self._stream)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.uri = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def endless() -> AsyncIterator[EndlessEventServer]:
    async with EndlessEventServer() as server:
        yield server


async def test_an_endless_event_drops_the_connection_and_retries_with_backoff(
    endless: EndlessEventServer,
) -> None:
    events: list[ServerSentEvent] = []

    async def collect(event: ServerSentEvent) -> None:
        events.append(event)

    sleep = ControlledSleep(budget=1)
    client = StreamClient(
        endless.uri, AUTOCONFIG_KEY, max_event_bytes=LIMIT, sleep=sleep, rand=lambda: 0.0
    )
    task = asyncio.create_task(client.run(collect))
    try:
        await eventually(lambda: len(sleep.delays) == 2, what="two oversize events")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert client.state.oversize_events == 2 and endless.connections == 2
    assert sleep.delays == [1.0, 2.0]  # the normal schedule, doubling
    assert "larger than 65536 bytes" in (client.state.last_error or "")
    assert [e.type for e in events] == ["put", "put"]  # the good put of each connection


async def test_oversize_events_are_shown_in_status_and_metrics(
    endless: EndlessEventServer,
) -> None:
    client = StreamClient(endless.uri, AUTOCONFIG_KEY, backoff=FAST, max_event_bytes=LIMIT)
    manager = StreamManager(AutoConfigCache.null(), RecordingHandler(), client=client)
    async with manager:
        await eventually(lambda: client.state.oversize_events >= 2, what="oversize events")
        status_text, metrics = await fetch_status_and_metrics(manager)
    document = json.loads(status_text)
    assert document["stream"]["oversizeEvents"] >= 2
    assert document["ready"] is True  # the good put before each endless event was applied
    samples = [
        line for line in metrics.splitlines() if line.startswith("autoconfig_cache_stream_oversize")
    ]
    assert len(samples) == 1 and float(samples[0].split()[1]) >= 2
    assert "# TYPE autoconfig_cache_stream_oversize_events_total counter" in metrics


def test_the_limit_is_a_setting() -> None:
    from autoconfig_cache.config import Config
    from autoconfig_cache.errors import ConfigurationError

    assert Config.load(environ={}).max_event_bytes == 256 * 1024 * 1024
    assert Config.load(
        environ={"AUTO_CONFIG_CACHE_MAX_EVENT_BYTES": "1048576"}
    ).max_event_bytes == (1024 * 1024)
    for bad in ("²", "-1", "12x", "1000", "9" * 400):
        with pytest.raises(ConfigurationError, match="AUTO_CONFIG_CACHE_MAX_EVENT_BYTES"):
            Config.load(environ={"AUTO_CONFIG_CACHE_MAX_EVENT_BYTES": bad})
