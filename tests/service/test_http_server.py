"""The HTTP server's own contract: routes given to it, and where its log lines go.

The HTTP behaviour itself (methods, errors, keep-alive, limits, shutdown) is tested through the
status server in ``test_status_http.py``. Timeouts in here are safety nets, not assertions.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from autoconfig_cache.service.http_server import HttpServer, Response
from autoconfig_cache.service.status import StatusServer
from autoconfig_cache.stream import StreamServer
from tests.stream.conftest import AUTOCONFIG_KEY, RecordingHandler, make_manager

#: Safety net for every network wait in here (not a performance assertion).
PATIENCE = 10.0


async def fetch(port: int, path: str) -> bytes:
    """The raw response to an HTTP/1.0 ``GET path`` (the server closes after it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        return await asyncio.wait_for(reader.read(), PATIENCE)
    finally:
        writer.close()


async def failure_logs(
    server: HttpServer | StatusServer, path: str, caplog: pytest.LogCaptureFixture
) -> list[tuple[str, str]]:
    """Start ``server``, fetch ``path`` (which must answer 500), close it; ``(logger name,
    message)`` of each error logged with the route's ``RuntimeError``."""
    await server.start()
    try:
        with caplog.at_level(logging.ERROR):
            raw = await fetch(server.port, path)
    finally:
        await server.close()
    assert raw.startswith(b"HTTP/1.1 500 ")
    failures = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    return [(r.name, r.getMessage()) for r in failures]


async def test_a_route_is_answered_with_its_response_and_headers() -> None:
    def hello() -> Response:
        return Response(201, b"text/x-test", b"hi", ((b"X-Extra", b"1"),))

    server = HttpServer({b"/hello": hello}, host="127.0.0.1", port=0)
    await server.start()
    try:
        raw = await fetch(server.port, "/hello")
    finally:
        await server.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 201 Created"
    assert b"content-type: text/x-test" in head.lower()
    assert b"x-extra: 1" in head.lower()
    assert body == b"hi"


async def test_a_failing_route_is_logged_under_the_given_logger_and_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom() -> Response:
        raise RuntimeError("route broke")

    server = HttpServer(
        {b"/boom": boom},
        host="127.0.0.1",
        port=0,
        name="probe server",
        logger=logging.getLogger("tests.http_probe"),
    )
    assert await failure_logs(server, "/boom", caplog) == [
        ("tests.http_probe", "probe server: /boom failed")
    ]


async def test_the_status_server_logs_a_failing_route_under_its_own_module(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Log lines name their logger: the status server's failures stay under its module's name.
    manager = make_manager(StreamServer({}, autoconfig_key=AUTOCONFIG_KEY), RecordingHandler())
    status_server = StatusServer(
        manager, store_scheme="none", store_format="v2", host="127.0.0.1", port=0
    )

    def broken() -> str:
        raise RuntimeError("metrics broke")

    monkeypatch.setattr(status_server, "metrics_text", broken)
    assert await failure_logs(status_server, "/metrics", caplog) == [
        ("autoconfig_cache.service.status", "status server: /metrics failed")
    ]
