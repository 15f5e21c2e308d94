"""A small HTTP/1.1 server for ``GET``/``HEAD`` routes, on asyncio + h11.

``asyncio.start_server`` and h11 (python-hyper's sans-IO HTTP/1.1 parser), not aiohttp.
Importing aiohttp takes ~165 ms (its connector module even builds two SSL contexts), which was
most of the start-up budget of ``autoconfig-cache run``: ``/readyz`` is what an orchestrator
waits for, so nothing on the way to it may import aiohttp. The AutoConfig stream client still
uses aiohttp; it imports it when it first connects. What the server does, as aiohttp did: every
route answers ``GET`` and ``HEAD`` (the same status and headers, no body), another method gets
405 with ``Allow: GET, HEAD``, another path 404; the query string is ignored; HTTP/1.1
keep-alive and HTTP/1.0 (one request per connection); a response always has a
``Content-Length``. Its limits are the ``_..._BYTES`` and ``_..._SECONDS`` constants below: a
malformed or oversized request is answered 400, 413 or 431 and its connection closed; a client
too slow to send a request or to take a response is disconnected; a failing handler answers 500
and is logged. No request data (path, headers, body) is ever logged.

The status server (:mod:`autoconfig_cache.service.status`) serves its routes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, NamedTuple

import h11

# -- limits -----------------------------------------------------------------------------------

#: Largest request head (request line and headers) accepted: h11's own default (aiohttp allowed
#: 8190 bytes a line, aiohttp/http_parser.py). A longer one is answered 431 and its connection
#: closed; probes and metrics scrapers send well under 1 KiB.
_MAX_HEAD_BYTES = 16 * 1024
#: No route takes a body; one sent anyway is read and dropped, up to this size (aiohttp's
#: ``client_max_size``, aiohttp/web_request.py). A larger one is answered 413, connection closed.
_MAX_BODY_BYTES = 1024 * 1024
#: Seconds a client has to send a complete request (head and body), counted from the accept of
#: its connection, or on a kept-alive connection from the first byte of the request. A client
#: that connects and sends nothing, or trickles its request, cannot hold a connection longer.
_REQUEST_TIMEOUT_SECONDS = 10.0
#: Seconds a kept-alive connection may wait for its next request before it is closed: aiohttp's
#: default ``keepalive_timeout`` since 3.10.6 (aiohttp/web_protocol.py; aio-libs/aiohttp#9285),
#: what clients of this server saw. Longer than a reverse proxy's or load balancer's own idle
#: timeout (nginx 75 s, AWS ALB 1 hour), so the server never closes a connection the proxy is
#: about to reuse; a connection only gets here after a valid request.
_KEEP_ALIVE_TIMEOUT_SECONDS = 3630.0
#: Seconds a client has to take a response (``/status`` can be megabytes); a client that stops
#: reading is disconnected rather than holding its connection and buffer for ever.
_SEND_TIMEOUT_SECONDS = 30.0
#: :meth:`HttpServer.close` gives responses in progress this long (aiohttp's
#: ``shutdown_timeout`` here was 1 s), then closes every connection.
_SHUTDOWN_GRACE_SECONDS = 1.0
#: Listen backlog: aiohttp's ``TCPSite`` default (aiohttp/web_runner.py).
_BACKLOG = 128
#: Bytes asked of the socket per read.
_READ_SIZE = 64 * 1024

#: The content type of the error answers.
_TEXT_UTF8 = b"text/plain; charset=utf-8"
#: The methods every route answers (as aiohttp's ``add_get``, which adds ``HEAD``).
_METHODS = (b"GET", b"HEAD")
_ALLOW = ((b"Allow", b"GET, HEAD"),)

_logger = logging.getLogger(__name__)


class Response(NamedTuple):
    """What a route answers; the server adds the framing headers (``Content-Length``, and
    ``Connection: close`` when it closes the connection after it)."""

    #: The HTTP status code; its reason phrase is the standard one.
    status: int
    #: The ``Content-Type`` header's value.
    content_type: bytes
    #: The body (not sent to a ``HEAD`` request; its length is).
    body: bytes
    #: More headers, as (name, value) pairs.
    headers: tuple[tuple[bytes, bytes], ...] = ()


#: A route: called per request, on the event loop, with nothing of the request.
Route = Callable[[], Response]


class _Refused(Exception):
    """A request over a limit h11 does not enforce itself: answered ``status``, then closed."""

    def __init__(self, status: HTTPStatus, method: bytes) -> None:
        super().__init__()
        self.status = status
        #: The request's method: a ``HEAD`` request's refusal has no body either.
        self.method = method


class _Client:
    """One accepted connection: the task serving it, its stream, and whether it waits for a
    request (idle: no byte of the next request received), which :meth:`HttpServer.close`
    ends at once."""

    __slots__ = ("idle", "task", "writer")

    def __init__(self, task: asyncio.Task[Any], writer: asyncio.StreamWriter) -> None:
        self.task = task
        self.writer = writer
        self.idle = True


class HttpServer:
    """A small HTTP/1.1 server for ``GET``/``HEAD`` routes on asyncio + h11 (see the module's
    description for what it answers and its limits).

    :param routes: path (without query string) -> the function answering it.
    :param host: interface to listen on (an address, or a name to resolve).
    :param port: port to listen on; 0 picks a free one (see :attr:`port` after :meth:`start`).
    :param name: how log messages name the server (``"<name>: /metrics failed"``).
    :param logger: where those messages go (default: this module's logger).
    """

    def __init__(
        self,
        routes: Mapping[bytes, Route],
        *,
        host: str,
        port: int,
        name: str = "status server",
        logger: logging.Logger | None = None,
    ) -> None:
        self._routes = dict(routes)
        self.host = host
        self.port = port
        self._name = name
        self._logger = logger or _logger
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        #: Set by :meth:`close`: each response then closes its connection.
        self._closing = False

    async def start(self) -> None:
        """Start listening.

        :raises OSError: as :func:`asyncio.start_server` does (the port is taken, the address
            cannot be bound or resolved).
        """
        # reuse_address as aiohttp's TCPSite on Linux: a restart binds at once although the
        # previous process's connections are in TIME_WAIT.
        server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True, backlog=_BACKLOG
        )
        self._server = server
        self._closing = False
        if self.port == 0 and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close the connections: idle ones at once, those with a request in
        progress once it is answered, at most :data:`_SHUTDOWN_GRACE_SECONDS` later.

        Idempotent; does nothing if :meth:`start` never ran or failed.
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        server.close()
        # Connections are closed, not their tasks cancelled: a read or a write then ends (end of
        # stream, ConnectionError) and the task returns. (Python 3.11's start_server logs a
        # cancelled connection task as an error.)
        for client in self._clients:
            if client.idle:
                client.writer.close()
        tasks = {client.task for client in self._clients}
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=_SHUTDOWN_GRACE_SECONDS)
            for client in self._clients:
                if client.task in late:
                    client.writer.transport.abort()  # what is left unsent is dropped
            if late:
                await asyncio.wait(late)
        await server.wait_closed()

    # -- connections --------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until it closes; its failure never reaches the server."""
        task = asyncio.current_task()
        if self._closing or task is None:  # accepted while close() ran
            writer.close()
            return
        client = _Client(task, writer)
        self._clients.add(client)
        try:
            await self._converse(reader, writer, client)
        except (ConnectionError, TimeoutError):
            pass  # the client went away, or was too slow: nothing to answer
        except Exception as exc:
            # The exception's text could quote the request: only its type is logged.
            self._logger.warning("%s: a connection failed (%s)", self._name, type(exc).__name__)
        finally:
            self._clients.discard(client)
            writer.close()

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: _Client
    ) -> None:
        """Answer the connection's requests, one after the other, while it is kept alive."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)
        first = True
        while True:
            client.idle = True
            try:
                request = await self._receive(conn, reader, writer, client, first=first)
            except h11.RemoteProtocolError as exc:
                # Malformed, or a head over _MAX_HEAD_BYTES: h11 says which status fits.
                await self._send_error(conn, writer, exc.error_status_hint, method=b"")
                return
            except _Refused as exc:
                await self._send_error(conn, writer, exc.status, method=exc.method)
                return
            if request is None:
                return  # the client closed the connection between requests
            closing = self._closing
            await self._send(conn, writer, request.method, self._respond(request), close=closing)
            if closing or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # HTTP/1.0, "Connection: close" (either side), or the server closing
            conn.start_next_cycle()
            first = False

    async def _receive(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: _Client,
        *,
        first: bool,
    ) -> h11.Request | None:
        """The next complete request (its body read and dropped); ``None`` if the client closed.

        :raises TimeoutError: the client was too slow (see the ``_TIMEOUT_SECONDS`` constants).
        :raises h11.RemoteProtocolError: the request is malformed or its head too long.
        :raises _Refused: the request's head or body is over its limit (:data:`_MAX_HEAD_BYTES`,
            :data:`_MAX_BODY_BYTES`).
        """
        loop = asyncio.get_running_loop()
        # A new connection must send its request in time; a kept-alive one may first idle
        # (unless part of its next request is already buffered).
        deadline = (
            loop.time() + _REQUEST_TIMEOUT_SECONDS if first or conn.trailing_data[0] else None
        )
        request: h11.Request | None = None
        body_bytes = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                when = loop.time() + _KEEP_ALIVE_TIMEOUT_SECONDS if deadline is None else deadline
                await self._read_more(conn, reader, writer, when)
                if deadline is None:  # the first bytes of a kept-alive connection's next request
                    deadline = loop.time() + _REQUEST_TIMEOUT_SECONDS
                client.idle = False
            elif isinstance(event, h11.Request):
                # h11 bounds only a head still incomplete; one that came whole is measured here.
                if _head_size(event) > _MAX_HEAD_BYTES:
                    raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, event.method)
                request = event
            elif isinstance(event, h11.Data):
                body_bytes += len(event.data)
                if body_bytes > _MAX_BODY_BYTES:
                    method = request.method if request else b""
                    raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, method)
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _read_more(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        when: float,
    ) -> None:
        """Give h11 the next bytes received (``b""`` at the end), by the loop time ``when``.

        :raises TimeoutError: nothing came by then.
        """
        if conn.they_are_waiting_for_100_continue:
            # The client holds its body back until told to send it (it is read and dropped).
            interim = h11.InformationalResponse(status_code=100, headers=[])
            await _write(writer, [conn.send(interim)])
        async with asyncio.timeout_at(when):
            data = await reader.read(_READ_SIZE)
        conn.receive_data(data)

    def _respond(self, request: h11.Request) -> Response:
        """Route a request: the query string is ignored; ``HEAD`` is answered as ``GET``."""
        path = request.target.partition(b"?")[0]
        route = self._routes.get(path)
        if route is None:
            return _error(HTTPStatus.NOT_FOUND)
        if request.method not in _METHODS:
            return _error(HTTPStatus.METHOD_NOT_ALLOWED, _ALLOW)
        try:
            return route()
        except Exception:
            # The path is one of the routes' own, not the client's text.
            self._logger.exception("%s: %s failed", self._name, path.decode("ascii"))
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR)

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        method: bytes,
        response: Response,
        *,
        close: bool,
    ) -> None:
        """Send ``response``, with its length; for ``HEAD``, without its body."""
        headers = [
            (b"Content-Type", response.content_type),
            (b"Content-Length", b"%d" % len(response.body)),
            *response.headers,
        ]
        if close:
            headers.append((b"Connection", b"close"))
        status = HTTPStatus(response.status)
        chunks = [
            conn.send(
                h11.Response(
                    status_code=status.value, headers=headers, reason=status.phrase.encode()
                )
            )
        ]
        if method != b"HEAD" and response.body:
            # Passed through unjoined: /status can be megabytes.
            chunks.extend(conn.send_with_data_passthrough(h11.Data(data=response.body)) or ())
        chunks.append(conn.send(h11.EndOfMessage()))
        await _write(writer, chunks)

    async def _send_error(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, *, method: bytes
    ) -> None:
        """Answer a request that cannot be served with ``status``, if a response can still be
        sent; the connection is closed after it. ``method``: the request's (``b""``: unknown)."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        # If h11 cannot frame a response on this connection any more, it is just closed.
        with contextlib.suppress(h11.LocalProtocolError):
            await self._send(conn, writer, method, _error(HTTPStatus(status)), close=True)


async def _write(writer: asyncio.StreamWriter, chunks: list[bytes]) -> None:
    """Send ``chunks``; a client that does not take them in time is given up on.

    :raises TimeoutError: after :data:`_SEND_TIMEOUT_SECONDS`.
    """
    # One write each, not writelines(): Python 3.11's transports join what writelines() is
    # given into one new bytes object, a copy of a /status body of megabytes per request.
    for chunk in chunks:
        if chunk:
            writer.write(chunk)
    async with asyncio.timeout(_SEND_TIMEOUT_SECONDS):
        await writer.drain()


def _head_size(request: h11.Request) -> int:
    """The size of ``request``'s head as sent (request line and header lines, with their CRLFs)."""
    line = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers) + 2


def _error(status: HTTPStatus, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Response:
    """An error answer, with aiohttp's text body (``404: Not Found``)."""
    return Response(status.value, _TEXT_UTF8, f"{status.value}: {status.phrase}".encode(), headers)
