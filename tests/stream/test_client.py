"""The stream client's connection policy, against the local stream server over loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from autoconfig_cache.stream import (
    AuthenticationError,
    BackoffPolicy,
    ServerSentEvent,
    StreamClient,
    StreamServer,
)
from autoconfig_cache.stream.client import backoff_delay

from .conftest import AUTOCONFIG_KEY, FAST, eventually


class Collector:
    def __init__(self) -> None:
        self.events: list[ServerSentEvent] = []

    async def __call__(self, event: ServerSentEvent) -> None:
        self.events.append(event)


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Tasks a test starts; cancelled and awaited at the end."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# ---- backoff (pure) -----------------------------------------------------------------------------


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    policy = BackoffPolicy()
    assert [policy.delay(n, rand=0.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_backoff_jitter_takes_up_to_half_off() -> None:
    policy = BackoffPolicy()
    assert policy.delay(3, rand=0.5) == 8 - 8 * 0.5 * 0.5
    assert all(4 <= policy.delay(3, rand=r / 10) <= 8 for r in range(10))


def test_backoff_base_can_be_overridden_by_retry_field() -> None:
    assert BackoffPolicy().delay(2, base=0.25, rand=0.0) == 1.0


def test_backoff_survives_huge_attempt_counts() -> None:
    assert backoff_delay(10_000, base=1, maximum=30, jitter=0.5, rand=0.0) == 30


# ---- against the server -------------------------------------------------------------------------


async def test_request_carries_key_path_and_protocol_version(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.set_snapshot({"environments": {}, "filters": {}})
    collector = Collector()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(collector)))
    await eventually(lambda: len(collector.events) == 1)
    assert collector.events[0].type == "put"
    assert server.last_query == "rpacProtocolVersion=2"
    assert client.state.connected


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key_stops_with_authentication_error(
    server: StreamServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    server.reject_with = status
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as info:
        await client.run(Collector())
    assert info.value.status == status
    assert server.request_count == 1  # no retry
    assert AUTOCONFIG_KEY not in str(info.value) and AUTOCONFIG_KEY not in caplog.text
    assert AUTOCONFIG_KEY[-4:] in str(info.value)


async def test_wrong_key_is_rejected_by_the_server(server: StreamServer) -> None:
    client = StreamClient(server.uri, "wrong-key-0000", backoff=FAST)
    with pytest.raises(AuthenticationError):
        await client.run(Collector())


async def test_service_unavailable_is_retried(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.reject_with = 503
    collector = Collector()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(collector)))
    await server.wait_for_requests(3)
    assert server.connection_count == 0 and "503" in (client.state.last_error or "")
    server.reject_with = None
    await eventually(lambda: len(collector.events) == 1, what="connected after the 503s")


async def test_network_error_is_retried(running: list[asyncio.Task[None]]) -> None:
    from tests.services import free_port

    port = free_port()  # nothing listens here yet
    collector = Collector()
    client = StreamClient(f"http://127.0.0.1:{port}", AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(collector)))
    await eventually(lambda: client.state.attempts >= 2, what="refused connections retried")
    async with StreamServer({}, autoconfig_key=AUTOCONFIG_KEY, port=port):
        await eventually(lambda: len(collector.events) == 1, what="connected once up")


async def test_retry_field_replaces_the_base_delay(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    # A base of one hour: reconnecting at all within the test shows retry: was used.
    slow = BackoffPolicy(base=3600.0, maximum=3600.0, jitter=0.5)
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=slow, rand=lambda: 0.0)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(1)
    await eventually(lambda: server.open_connections == 1)
    await server.send_raw(b"retry: 20\n\n")
    await eventually(lambda: client.state.retry_base == 0.02)
    assert client.next_delay() == 0.02 * 2 ** client.state.attempts
    await server.drop_connections()
    await server.wait_for_connections(2)


async def test_heartbeat_comments_keep_the_connection_alive(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, read_timeout=1.0)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(1)
    for _ in range(25):  # 2.5 s of heartbeats, 2.5 times the read timeout
        await server.send_heartbeat()
        await asyncio.sleep(0.1)
    assert server.connection_count == 1
    assert client.state.connected


async def test_silence_beyond_the_read_timeout_reconnects(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.silent = True
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, read_timeout=0.2)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(2)
    assert "read timeout" in (client.state.last_error or "")


async def test_dropped_connection_reconnects_and_gets_a_new_put(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    collector = Collector()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(collector)))
    await eventually(lambda: len(collector.events) == 1)
    await server.drop_connections()
    await eventually(lambda: len(collector.events) == 2, what="second put after the drop")
    assert [e.type for e in collector.events] == ["put", "put"]


@pytest.mark.parametrize(("reset_after", "expected_attempts"), [(3600.0, 3), (0.0, 1)])
async def test_attempts_reset_only_after_a_long_enough_connection(
    server: StreamServer, running: list[asyncio.Task[None]],
    reset_after: float, expected_attempts: int,
) -> None:
    policy = BackoffPolicy(base=0.01, maximum=0.05, jitter=0.5, reset_after=reset_after)
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=policy)
    running.append(asyncio.create_task(client.run(Collector())))
    for n in range(1, 4):
        await server.wait_for_connections(n)
        await eventually(lambda: server.open_connections == 1)
        await server.drop_connections()
    await server.wait_for_connections(4)
    assert client.state.attempts == expected_attempts


async def test_invalid_event_stream_bytes_reconnect(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(1)
    await eventually(lambda: server.open_connections == 1)
    await server.send_raw(b"data: \xff\xfe\n\n")
    await server.wait_for_connections(2)
    assert "invalid event-stream data" in (client.state.last_error or "")


def test_repr_masks_the_key() -> None:
    client = StreamClient("http://127.0.0.1:1", AUTOCONFIG_KEY)
    assert AUTOCONFIG_KEY not in repr(client)
