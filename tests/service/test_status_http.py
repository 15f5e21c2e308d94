"""The status server's HTTP: methods, errors, keep-alive, limits and shutdown, over real sockets.

A real local stream server feeds a real :class:`StreamManager`; requests are written as raw bytes
so that what goes over the wire (and how it is split) is what the test says. Timeouts in here are
safety nets against hanging, never assertions on how fast anything is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import NamedTuple

import aiohttp
import pytest

from autoconfig_cache.service import http_server
from autoconfig_cache.service.status import PortInUseError, StatusServer
from autoconfig_cache.stream import StreamManager, StreamServer
from tests.items import env_json, filter_json
from tests.stream.conftest import AUTOCONFIG_KEY, RecordingHandler, eventually, make_manager

PUT = {
    "environments": {"e1": env_json("e1", 1), "e2": env_json("e2", 1)},
    "filters": {"f1": filter_json(1)},
}
#: Safety net for every network wait in here (not a performance assertion).
PATIENCE = 10.0
ROUTES = ("/status", "/healthz", "/readyz", "/metrics")


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """One raw TCP connection to the status server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # Each write leaves at once as its own segment: a split request arrives split.
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, *, head: bool = False) -> Reply:
        """The next response; ``head``: it answers a HEAD request (no body is read)."""
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), PATIENCE)
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")[:-2]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split(" ")[1])
        length = 0 if head or status < 200 else int(headers["content-length"])
        body = await asyncio.wait_for(self.reader.readexactly(length), PATIENCE)
        return Reply(status, headers, body)

    async def closed_by_server(self) -> bool:
        """True once the server closes the connection (whatever it still sent is skipped)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), PATIENCE):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def connected(port: int) -> AsyncIterator[Client]:
    """A :class:`Client` connected to ``port``, closed on leaving the block."""
    client = await Client.connect(port)
    try:
        yield client
    finally:
        client.close()


def get(path: str, *, method: str = "GET", version: str = "1.1", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: test\r\n{extra}\r\n".encode()


@pytest.fixture
async def manager() -> AsyncIterator[StreamManager]:
    stream = StreamServer({}, autoconfig_key=AUTOCONFIG_KEY)
    await stream.start()
    stream.set_snapshot(PUT)
    handler = RecordingHandler()
    try:
        async with make_manager(stream, handler) as started:
            await handler.wait_for(("all_received", "stream"))
            yield started
    finally:
        await stream.close()


@pytest.fixture
async def server(manager: StreamManager) -> AsyncIterator[StatusServer]:
    status_server = StatusServer(
        manager, store_scheme="none", store_format="v2", host="127.0.0.1", port=0
    )
    await status_server.start()
    yield status_server
    await status_server.close()


async def exchange(server: StatusServer, request: bytes, *, head: bool = False) -> Reply:
    async with connected(server.port) as client:
        await client.send(request)
        return await client.reply(head=head)


async def test_each_route_answers_get_with_its_type_and_length(server: StatusServer) -> None:
    status = await exchange(server, get("/status"))
    assert status.status == 200
    assert status.headers["content-type"] == "application/json"
    assert status.headers["cache-control"] == "no-store"
    assert int(status.headers["content-length"]) == len(status.body)
    assert sorted(json.loads(status.body)["environments"]) == ["e1", "e2"]

    health = await exchange(server, get("/healthz"))
    assert (health.status, json.loads(health.body)) == (200, {"status": "ok"})
    assert health.headers["content-type"] == "application/json; charset=utf-8"

    ready = await exchange(server, get("/readyz"))
    assert (ready.status, json.loads(ready.body)) == (200, {"ready": True, "source": "stream"})
    assert ready.headers["content-type"] == "application/json; charset=utf-8"

    metrics = await exchange(server, get("/metrics"))
    assert metrics.status == 200
    assert metrics.headers["content-type"] == "text/plain; charset=utf-8"
    assert metrics.headers["x-prometheus-format"] == "0.0.4"
    assert b"autoconfig_cache_environments 2\n" in metrics.body
    assert int(metrics.headers["content-length"]) == len(metrics.body)


async def test_readyz_is_503_before_a_configuration_is_held() -> None:
    # A manager never started holds nothing: /readyz reads only its ready flag and source.
    stream = StreamServer({}, autoconfig_key=AUTOCONFIG_KEY)
    idle = make_manager(stream, RecordingHandler())
    status_server = StatusServer(
        idle, store_scheme="none", store_format="v2", host="127.0.0.1", port=0
    )
    await status_server.start()
    try:
        reply = await exchange(status_server, get("/readyz"))
        head = await exchange(status_server, get("/readyz", method="HEAD"), head=True)
    finally:
        await status_server.close()
    assert reply.status == head.status == 503
    assert json.loads(reply.body) == {"ready": False, "source": "none"}


async def test_head_answers_every_route_with_the_get_headers_and_no_body(
    server: StatusServer,
) -> None:
    for path in ROUTES:
        async with connected(server.port) as client:
            await client.send(get(path, method="HEAD"))
            head = await client.reply(head=True)
            # The same connection answers a GET next: had a body followed the HEAD response,
            # it would be read here as the GET's status line.
            await client.send(get(path))
            full = await client.reply()
        assert head.status == full.status == 200, path
        assert head.headers["content-type"] == full.headers["content-type"], path
        assert int(head.headers["content-length"]) > 0, path
        assert head.body == b""
    health = await exchange(server, get("/healthz", method="HEAD"), head=True)
    assert health.headers["content-length"] == str(len(b'{"status": "ok"}'))


async def test_another_method_on_a_route_is_405_with_allow(server: StatusServer) -> None:
    for method in ("POST", "PUT", "DELETE"):
        reply = await exchange(server, get("/status", method=method, extra="Content-Length: 0\r\n"))
        assert reply.status == 405, method
        assert reply.headers["allow"] == "GET, HEAD"
        assert reply.body == b"405: Method Not Allowed"


async def test_an_unknown_path_is_404(server: StatusServer) -> None:
    for path in ("/", "/nope", "/status/", "/STATUS"):
        reply = await exchange(server, get(path))
        assert (reply.status, reply.body) == (404, b"404: Not Found"), path
        assert reply.headers["content-type"] == "text/plain; charset=utf-8"


async def test_the_query_string_is_ignored(server: StatusServer) -> None:
    reply = await exchange(server, get("/readyz?x=1&y"))
    assert reply.status == 200
    assert json.loads(reply.body)["ready"] is True


async def test_one_kept_alive_connection_answers_several_requests(server: StatusServer) -> None:
    async with connected(server.port) as client:
        for path in ("/healthz", "/readyz", "/status", "/nope", "/healthz"):
            await client.send(get(path))
            reply = await client.reply()
            assert reply.status == (404 if path == "/nope" else 200), path
            assert "connection" not in reply.headers


async def test_pipelined_requests_are_answered_in_order(server: StatusServer) -> None:
    async with connected(server.port) as client:
        await client.send(get("/healthz") + get("/nope") + get("/readyz"))
        statuses = [(await client.reply()).status for _ in range(3)]
    assert statuses == [200, 404, 200]


async def test_aiohttp_reuses_one_connection_for_several_requests(server: StatusServer) -> None:
    created: list[object] = []
    reused: list[object] = []
    tracing = aiohttp.TraceConfig()

    async def on_create(*args: object) -> None:
        created.append(args)

    async def on_reuse(*args: object) -> None:
        reused.append(args)

    tracing.on_connection_create_end.append(on_create)
    tracing.on_connection_reuseconn.append(on_reuse)
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession(trace_configs=[tracing]) as http:
        for path in ("/healthz", "/status", "/metrics", "/readyz"):
            async with http.get(base + path) as response:
                assert response.status == 200
                await response.read()
    assert (len(created), len(reused)) == (1, 3)


async def test_http_1_0_gets_its_answer_and_the_connection_is_closed(
    server: StatusServer,
) -> None:
    async with connected(server.port) as client:
        await client.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        reply = await client.reply()
        assert (reply.status, json.loads(reply.body)) == (200, {"status": "ok"})
        assert await client.closed_by_server()


async def test_connection_close_from_the_client_is_honoured(server: StatusServer) -> None:
    async with connected(server.port) as client:
        await client.send(get("/healthz", extra="Connection: close\r\n"))
        assert (await client.reply()).status == 200
        assert await client.closed_by_server()


async def test_a_request_split_across_many_writes_is_answered(server: StatusServer) -> None:
    request = get("/readyz?split=1", extra="User-Agent: split-test\r\nAccept: */*\r\n")
    async with connected(server.port) as client:
        for start in range(0, len(request), 5):
            await client.send(request[start : start + 5])
            await asyncio.sleep(0.005)  # let each piece be read on its own
        reply = await client.reply()
    assert reply.status == 200
    assert json.loads(reply.body)["ready"] is True


async def test_a_request_body_is_read_and_dropped_and_the_connection_goes_on(
    server: StatusServer,
) -> None:
    async with connected(server.port) as client:
        body = b"x" * 70_000  # more than one read of the server
        await client.send(get("/healthz", extra=f"Content-Length: {len(body)}\r\n") + body)
        assert (await client.reply()).status == 200
        await client.send(get("/readyz", method="POST", extra="Content-Length: 3\r\n") + b"abc")
        assert (await client.reply()).status == 405
        await client.send(get("/readyz"))
        assert (await client.reply()).status == 200


async def test_a_client_expecting_100_continue_is_told_to_send_its_body(
    server: StatusServer,
) -> None:
    async with connected(server.port) as client:
        await client.send(get("/healthz", extra="Content-Length: 4\r\nExpect: 100-continue\r\n"))
        assert (await client.reply()).status == 100
        await client.send(b"body")
        assert (await client.reply()).status == 200


async def test_a_body_over_the_limit_is_413_and_closes(
    server: StatusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "_MAX_BODY_BYTES", 100)
    async with connected(server.port) as client:
        await client.send(get("/healthz", extra="Content-Length: 101\r\n") + b"x" * 101)
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (413, "close")
        assert await client.closed_by_server()


async def test_oversized_headers_are_refused_and_the_next_connection_is_served(
    server: StatusServer,
) -> None:
    async with connected(server.port) as client:
        await client.send(get("/status", extra=f"X-Big: {'a' * 20_000}\r\n"))
        reply = await client.reply()
        assert reply.status == 431
        assert reply.headers["connection"] == "close"
        assert await client.closed_by_server()
    assert (await exchange(server, get("/healthz"))).status == 200


async def test_a_malformed_request_line_is_400_and_closes(server: StatusServer) -> None:
    for garbage in (b"GARBAGE\r\n\r\n", b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n"):
        async with connected(server.port) as client:
            await client.send(garbage)
            reply = await client.reply()
            assert (reply.status, reply.body) == (400, b"400: Bad Request")
            assert await client.closed_by_server()
    assert (await exchange(server, get("/healthz"))).status == 200


async def test_a_handler_error_is_500_and_logged_and_the_server_goes_on(
    server: StatusServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> str:
        raise RuntimeError("metrics broke")

    monkeypatch.setattr(server, "metrics_text", broken)
    async with connected(server.port) as client:
        with caplog.at_level(logging.ERROR, logger="autoconfig_cache.service.status"):
            await client.send(get("/metrics"))
            reply = await client.reply()
        assert (reply.status, reply.body) == (500, b"500: Internal Server Error")
        await client.send(get("/healthz"))  # the same connection still serves
        assert (await client.reply()).status == 200
    assert any(
        "/metrics failed" in r.getMessage() and r.exc_info and r.exc_info[0] is RuntimeError
        for r in caplog.records
    )


async def test_a_client_that_sends_nothing_is_disconnected(
    server: StatusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "_REQUEST_TIMEOUT_SECONDS", 0.2)
    async with connected(server.port) as client:
        assert await client.closed_by_server()


async def test_a_client_that_trickles_its_request_is_disconnected(
    server: StatusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "_REQUEST_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(http_server, "_KEEP_ALIVE_TIMEOUT_SECONDS", 60.0)
    async with connected(server.port) as client:
        await client.send(get("/healthz"))
        assert (await client.reply()).status == 200
        # Kept alive: a next request begins, byte by byte, and never ends.
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x":
            await client.send(bytes([byte]))
            await asyncio.sleep(0.02)
            if client.reader.at_eof():
                break
        assert await client.closed_by_server()


async def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    server: StatusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "_KEEP_ALIVE_TIMEOUT_SECONDS", 0.2)
    async with connected(server.port) as client:
        await client.send(get("/healthz"))
        assert (await client.reply()).status == 200
        assert await client.closed_by_server()


async def test_close_ends_an_idle_kept_alive_connection_and_stops_listening(
    manager: StreamManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The grace for responses in progress is longer than the test's patience: an idle
    # connection must be closed without waiting for it.
    monkeypatch.setattr(http_server, "_SHUTDOWN_GRACE_SECONDS", 60.0)
    status_server = StatusServer(
        manager, store_scheme="none", store_format="v2", host="127.0.0.1", port=0
    )
    await status_server.start()
    async with connected(status_server.port) as client:
        await client.send(get("/healthz"))
        assert (await client.reply()).status == 200
        # Kept alive for an hour otherwise: only close() can end this connection in time.
        await asyncio.wait_for(status_server.close(), PATIENCE)
        assert await client.closed_by_server()
    with pytest.raises(OSError):
        await Client.connect(status_server.port)
    await status_server.close()  # idempotent


async def test_close_lets_a_request_in_progress_be_answered_then_closes(
    server: StatusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "_SHUTDOWN_GRACE_SECONDS", 60.0)
    async with connected(server.port) as client:
        await client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the head is not done
        # White-box: wait until the server has read those bytes (its connection is then busy).
        await eventually(
            lambda: any(not c.idle for c in server._http._clients), what="the partial request read"
        )
        closing = asyncio.create_task(server.close())
        await asyncio.sleep(0)  # close() runs up to its wait for the request in progress
        await client.send(b"\r\n")
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (200, "close")
        assert await client.closed_by_server()
        await asyncio.wait_for(closing, PATIENCE)


async def test_close_is_safe_before_start_and_after_a_failed_start(
    manager: StreamManager,
) -> None:
    never = StatusServer(manager, store_scheme="none", store_format="v2", host="127.0.0.1", port=0)
    await never.close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        failed = StatusServer(
            manager,
            store_scheme="none",
            store_format="v2",
            host="127.0.0.1",
            port=taken.getsockname()[1],
        )
        with pytest.raises(PortInUseError):
            await failed.start()
    await failed.close()


async def test_a_port_in_use_raises_port_in_use_error(manager: StreamManager) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status_server = StatusServer(
            manager, store_scheme="none", store_format="v2", host="127.0.0.1", port=port
        )
        with pytest.raises(PortInUseError) as raised:
            await status_server.start()
    assert str(raised.value) == (
        f"port {port} on 127.0.0.1 is already in use; stop the other process or set PORT "
        "(TOML: port) to a free port"
    )


async def test_an_address_that_cannot_be_bound_names_the_settings(
    manager: StreamManager,
) -> None:
    status_server = StatusServer(
        manager, store_scheme="none", store_format="v2", host="192.0.2.1", port=0
    )  # TEST-NET-1: no interface here has it
    with pytest.raises(PortInUseError, match=r"cannot listen on 192\.0\.2\.1:0: .*; set PORT"):
        await status_server.start()


async def test_port_0_picks_a_free_port_and_serves_on_it(server: StatusServer) -> None:
    assert server.port != 0
    assert (await exchange(server, get("/healthz"))).status == 200


async def test_serving_does_not_import_aiohttp() -> None:
    code = (
        "import asyncio, sys\n"
        "from autoconfig_cache.cache import AutoConfigCache\n"
        "from autoconfig_cache.service.status import StatusServer\n"
        "from autoconfig_cache.stream import StreamClient, StreamManager\n"
        "class H:\n"
        "    def __getattr__(self, name): return lambda *a: None\n"
        "async def main():\n"
        "    client = StreamClient('http://127.0.0.1:9', 'k')\n"
        "    manager = StreamManager(AutoConfigCache.null(), H(), client=client)\n"
        "    server = StatusServer(manager, store_scheme='none', store_format='v2',\n"
        "                          host='127.0.0.1', port=0)\n"
        "    await server.start()\n"
        "    r, w = await asyncio.open_connection('127.0.0.1', server.port)\n"
        "    w.write(b'GET /status HTTP/1.0\\r\\n\\r\\n')\n"
        "    assert (await r.read()).startswith(b'HTTP/1.1 200 ')\n"
        "    await server.close()\n"
        "    print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp'))\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        __import__("sys").executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "[]"
