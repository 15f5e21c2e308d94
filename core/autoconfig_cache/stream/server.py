"""A local AutoConfig stream server, for tests, demos and development.

It speaks the stream protocol of ``{uri}/relay_auto_config?rpacProtocolVersion=2``: it checks the
``Authorization`` header against its AutoConfig key (401 otherwise), sends the current snapshot as
a ``put`` on every new connection, then whatever it is told to send. Driving it:

* from Python (async)::

      async with StreamServer({"environments": {...}, "filters": {}}, autoconfig_key="k") as srv:
          client = StreamClient(srv.uri, "k")
          await srv.push_patch("/environments/env1", env_json)
          await srv.push_delete("/filters/f1", version=3)
          await srv.push_reconnect(); await srv.send_heartbeat(); await srv.drop_connections()
          srv.reject_with = 503          # answer new connections with 503 (or 401) ...
          srv.reject_with = None         # ... until cleared
          srv.hold_put()                 # connections wait before their put ...
          srv.release_put()              # ... until released
          srv.silent = True              # send headers, then nothing at all (a hung server)

* from the command line, with control endpoints for scripts (``curl``)::

      AUTOCONFIG_KEY=... python -m autoconfig_cache.stream --snapshot snap.json --port 8030
      AUTOCONFIG_KEY=... python -m autoconfig_cache.stream --sample 20   # generated data
      curl -H "Authorization: $AUTOCONFIG_KEY" -X POST localhost:8030/control/patch \\
           -d '{"path": "/environments/e1", "data": {...}}'

  Control endpoints (POST, same ``Authorization`` header): ``/control/put`` (body: new snapshot,
  sent to every client), ``/control/patch``, ``/control/delete`` (the event's JSON body),
  ``/control/reconnect``, ``/control/heartbeat``, ``/control/drop``,
  ``/control/reject`` (``{"status": 503}`` or ``{"status": null}``), ``/control/silent``
  (``{"silent": true}``); ``GET /control/state`` returns counters as JSON.

It listens on loopback by default and is not meant to face a network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hmac
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ..secrets import mask
from .client import STREAM_PATH

logger = logging.getLogger(__name__)

_COLLECTIONS = {"/environments/": "environments", "/filters/": "filters"}


def format_event(event_type: str, data: str) -> bytes:
    """One server-sent event, ``data`` split into as many ``data:`` lines as it has lines."""
    lines = [f"event: {event_type}"]
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def load_snapshot(source: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    """The put data (``{"environments": {...}, "filters": {...}}``) from a dict or JSON file.

    A file or dict holding a whole ``put`` body (``{"path": "/", "data": {...}}``) works too.
    """
    if source is None:
        data: Any = {}
    elif isinstance(source, str | Path):
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    else:
        data = copy.deepcopy(dict(source))
    if isinstance(data, dict) and data.get("path") == "/" and isinstance(data.get("data"), dict):
        data = data["data"]
    if not isinstance(data, dict):
        raise ValueError("a snapshot must be a JSON object with 'environments' and 'filters'")
    data.setdefault("environments", {})
    data.setdefault("filters", {})
    return data


class _Connection:
    def __init__(self, request: web.Request) -> None:
        self.request = request
        # bytes to send; None ends the response normally, b"" drops the connection abruptly
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()


class StreamServer:
    """An AutoConfig stream server on aiohttp. See the module docstring.

    :param snapshot: the initial put data, as a dict or the path of a JSON file.
    :param autoconfig_key: the key clients must send in ``Authorization``.
    :param heartbeat_interval: seconds between heartbeat comments; ``None`` sends none unasked.
    """

    def __init__(
        self,
        snapshot: Mapping[str, Any] | str | Path | None = None,
        *,
        autoconfig_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: float | None = None,
        control: bool = True,
    ) -> None:
        self.snapshot = load_snapshot(snapshot)
        self.autoconfig_key = autoconfig_key
        self.host = host
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        #: Answer new stream connections with this HTTP status instead of a stream.
        self.reject_with: int | None = None
        #: Send the response headers, then nothing (no put, no heartbeats): a hung server.
        self.silent = False
        self.connection_count = 0  # stream connections that got a 200
        self.request_count = 0  # stream requests, whatever the answer
        self.rejected_count = 0
        #: The query string of the last stream request (clients send ``rpacProtocolVersion=2``).
        self.last_query = ""
        self._put_allowed = asyncio.Event()
        self._put_allowed.set()
        self._connections: set[_Connection] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._app = web.Application()
        self._app.router.add_get(STREAM_PATH, self._stream)
        if control:
            self._add_control_routes()

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The base URI to give a client (``stream_uri``)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        """Start listening; returns :attr:`uri`. With ``port=0`` a free port is chosen."""
        self._runner = web.AppRunner(
            self._app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=0.5,
            handler_cancellation=True,  # so a client that goes away ends its handler
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        logger.info("AutoConfig stream server listening on %s", self.uri)
        return self.uri

    async def close(self) -> None:
        """End every connection and stop listening. Idempotent."""
        for conn in list(self._connections):
            conn.queue.put_nowait(None)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> StreamServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- driving it ---------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """Stream connections currently open."""
        return len(self._connections)

    async def wait_for_connections(self, count: int) -> None:
        """Wait until :attr:`connection_count` (connections ever accepted) reaches ``count``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.connection_count >= count)

    async def wait_for_requests(self, count: int) -> None:
        """Wait until :attr:`request_count` (requests, whatever the answer) reaches ``count``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.request_count >= count)

    def hold_put(self) -> None:
        """New connections get their headers but wait for :meth:`release_put` before the put."""
        self._put_allowed.clear()

    def release_put(self) -> None:
        """Let waiting and future connections receive their put."""
        self._put_allowed.set()

    def set_snapshot(self, snapshot: Mapping[str, Any] | str | Path) -> None:
        """Replace the state sent as ``put`` to future connections."""
        self.snapshot = load_snapshot(snapshot)

    def _broadcast(self, frame: bytes | None) -> int:
        for conn in self._connections:
            conn.queue.put_nowait(frame)
        return len(self._connections)

    async def push_put(self, snapshot: Mapping[str, Any] | str | Path | None = None) -> int:
        """Send a ``put`` of the current (or a new) snapshot to every open connection."""
        if snapshot is not None:
            self.set_snapshot(snapshot)
        return self._broadcast(self._put_frame())

    async def push_patch(self, path: str, data: Mapping[str, Any]) -> int:
        """Apply and send a ``patch`` (path ``/environments/<id>`` or ``/filters/<id>``).

        Returns the number of connections it was sent to.
        """
        self._apply(path, dict(data))
        body = json.dumps({"path": path, "data": dict(data)}, separators=(",", ":"))
        return self._broadcast(format_event("patch", body))

    async def push_delete(self, path: str, version: int) -> int:
        """Apply and send a ``delete`` of ``path`` at ``version``."""
        self._apply(path, None)
        body = json.dumps({"path": path, "version": version}, separators=(",", ":"))
        return self._broadcast(format_event("delete", body))

    async def push_reconnect(self) -> int:
        """Send a ``reconnect`` event."""
        return self._broadcast(format_event("reconnect", ""))

    async def push_event(self, event_type: str, data: str) -> int:
        """Send any event as is (unknown types, malformed JSON ...); the state is not changed."""
        return self._broadcast(format_event(event_type, data))

    async def send_raw(self, raw: bytes) -> int:
        """Send raw bytes (for framing tests)."""
        return self._broadcast(raw)

    async def send_heartbeat(self) -> int:
        """Send a heartbeat comment line."""
        return self._broadcast(b":\n")

    async def drop_connections(self) -> int:
        """Abort every open connection without ending the response properly."""
        return self._broadcast(b"")

    def _apply(self, path: str, data: dict[str, Any] | None) -> None:
        for prefix, collection in _COLLECTIONS.items():
            if path.startswith(prefix):
                item_id = path[len(prefix) :]
                items = self.snapshot.setdefault(collection, {})
                if data is None:
                    items.pop(item_id, None)
                else:
                    items[item_id] = data
                return

    def _put_frame(self) -> bytes:
        body = json.dumps({"path": "/", "data": self.snapshot}, separators=(",", ":"))
        return format_event("put", body)

    # ---- HTTP ---------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), self.autoconfig_key.encode())

    async def _note_request(self, accepted: bool) -> None:
        async with self._changed:
            self.request_count += 1
            if accepted:
                self.connection_count += 1
            else:
                self.rejected_count += 1
            self._changed.notify_all()

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.last_query = request.query_string
        if not self._authorized(request):
            logger.info(
                "rejecting stream request with key %s", mask(request.headers.get("Authorization"))
            )
            await self._note_request(False)
            return web.Response(status=401, text="invalid AutoConfig key\n")
        if self.reject_with is not None:
            await self._note_request(False)
            return web.Response(status=self.reject_with, text=f"HTTP {self.reject_with}\n")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        conn = _Connection(request)
        self._connections.add(conn)
        await self._note_request(True)
        try:
            if self.silent:
                # Send nothing at all until close() or a drop, as a hung server would.
                frame = await conn.queue.get()
                while frame not in (None, b""):
                    frame = await conn.queue.get()
                if frame == b"" and request.transport is not None:
                    request.transport.abort()
                return response
            await self._put_allowed.wait()
            await response.write(self._put_frame())
            while True:
                try:
                    frame = await asyncio.wait_for(conn.queue.get(), self.heartbeat_interval)
                except TimeoutError:
                    frame = b":\n"
                if frame is None:
                    break
                if frame == b"":
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                await response.write(frame)
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            self._connections.discard(conn)
        return response

    def _add_control_routes(self) -> None:
        async def body_of(request: web.Request) -> Any:
            text = await request.text()
            return json.loads(text) if text.strip() else {}

        def guarded(fn: Any) -> Any:
            async def route(request: web.Request) -> web.StreamResponse:
                if not self._authorized(request):
                    return web.json_response({"error": "invalid AutoConfig key"}, status=401)
                try:
                    result = await fn(request)
                except (ValueError, KeyError, TypeError) as exc:
                    return web.json_response({"error": str(exc)}, status=400)
                return web.json_response(result)

            return route

        async def put(request: web.Request) -> Any:
            return {"sent": await self.push_put(await body_of(request))}

        async def patch(request: web.Request) -> Any:
            body = await body_of(request)
            return {"sent": await self.push_patch(str(body["path"]), body["data"])}

        async def delete(request: web.Request) -> Any:
            body = await body_of(request)
            return {"sent": await self.push_delete(str(body["path"]), int(body["version"]))}

        async def reconnect(request: web.Request) -> Any:
            return {"sent": await self.push_reconnect()}

        async def heartbeat(request: web.Request) -> Any:
            return {"sent": await self.send_heartbeat()}

        async def drop(request: web.Request) -> Any:
            return {"dropped": await self.drop_connections()}

        async def reject(request: web.Request) -> Any:
            status = (await body_of(request)).get("status")
            self.reject_with = None if status is None else int(status)
            return {"reject_with": self.reject_with}

        async def silent(request: web.Request) -> Any:
            self.silent = bool((await body_of(request)).get("silent", True))
            return {"silent": self.silent}

        async def state(request: web.Request) -> Any:
            return {
                "open_connections": self.open_connections,
                "connection_count": self.connection_count,
                "request_count": self.request_count,
                "rejected_count": self.rejected_count,
                "reject_with": self.reject_with,
                "silent": self.silent,
                "environments": len(self.snapshot.get("environments", {})),
                "filters": len(self.snapshot.get("filters", {})),
            }

        for name, fn in {
            "put": put,
            "patch": patch,
            "delete": delete,
            "reconnect": reconnect,
            "heartbeat": heartbeat,
            "drop": drop,
            "reject": reject,
            "silent": silent,
        }.items():
            self._app.router.add_post(f"/control/{name}", guarded(fn))
        self._app.router.add_get("/control/state", guarded(state))


#: Payload filters ``--sample`` adds beside its environments.
SAMPLE_FILTERS = 2


def _sample_size(text: str) -> int:
    """``--sample N``: a whole number of environments, at least 1."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {count}")
    return count


def _initial_snapshot(args: argparse.Namespace) -> Mapping[str, Any] | str | None:
    """What the server starts with: ``--sample N`` generated data, the ``--snapshot`` file, or
    an empty configuration."""
    if args.sample is not None:
        from .sample import sample_put_data

        return sample_put_data(environments=args.sample, filters=SAMPLE_FILTERS)
    snapshot: str | None = args.snapshot
    return snapshot


async def _serve(args: argparse.Namespace, key: str) -> None:
    server = StreamServer(
        _initial_snapshot(args),
        autoconfig_key=key,
        host=args.host,
        port=args.port,
        heartbeat_interval=args.heartbeat,
    )
    await server.start()
    print(f"AutoConfig stream server on {server.uri} (key {mask(key)}); Ctrl-C to stop", flush=True)
    environments = len(server.snapshot["environments"])
    filters = len(server.snapshot["filters"])
    if not (args.sample or args.snapshot):
        print("serving an empty configuration: give --sample N or --snapshot FILE", flush=True)
    else:
        print(f"serving {environments} environment(s) and {filters} filter(s)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry: ``python -m autoconfig_cache.stream``."""
    parser = argparse.ArgumentParser(
        prog="python -m autoconfig_cache.stream",
        description="Serve a JSON snapshot as a local AutoConfig stream (development only).",
    )
    initial = parser.add_mutually_exclusive_group()
    initial.add_argument("--snapshot", help="JSON file: put data or a whole put body")
    initial.add_argument(
        "--sample",
        metavar="N",
        type=_sample_size,
        help=f"serve N generated environments and {SAMPLE_FILTERS} payload filters (fake keys, "
        "the same ones on every run)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=60.0,
        help="seconds between heartbeat comments (default 60)",
    )
    parser.add_argument(
        "--key-env",
        default="AUTOCONFIG_KEY",
        help="environment variable holding the AutoConfig key clients must send",
    )
    args = parser.parse_args(argv)
    key = os.environ.get(args.key_env, "")
    if not key:
        print(f"set {args.key_env} to the AutoConfig key clients must send", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args, key))
    return 0
