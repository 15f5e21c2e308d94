"""A real local HTTP server that plays a :class:`~tests.fuzz.script.Script`, then the sentinel.

The n-th stream request gets the n-th connection of the script: its HTTP status, or its bytes
chunk by chunk (a chunk per write, the event loop given a turn between writes, so that the
client's reads see the generated boundaries when the network keeps them). Once the script is
used up, every further connection gets one ``patch`` of the *sentinel* environment and is then
held open: the stream manager writes the store in stream order, so the sentinel in the store
means that everything before it has been handled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web

from autoconfig_cache.stream.client import STREAM_PATH

from .script import Script

SENTINEL_ID = "sentinel"
SENTINEL = {
    "envID": SENTINEL_ID,
    "envKey": "sentinel",
    "projKey": "fuzz",
    "sdkKey": {"value": "sdk-" + "5e" * 8},
    "version": 1,
}
#: An event that never ends stops here even if the client never hangs up: far over the memory
#: bound, so that a missing event limit shows as a memory failure rather than a hung test.
ENDLESS_CAP = 32 * 1024 * 1024
_ENDLESS_LINE = b"data: " + b"z" * 1000 + b"\n"


class ScriptedStreamServer:
    """Serves ``script`` on ``127.0.0.1`` (a free port); checks the AutoConfig key.

    :param on_request: called at each stream request, before it is answered (the harness notes
        how many reconnection delays the client had taken by then).
    """

    def __init__(self, script: Script, autoconfig_key: str, on_request: Callable[[], None]) -> None:
        self.script = script
        self.autoconfig_key = autoconfig_key
        self.on_request = on_request
        self.requests = 0
        self.unauthorized = 0
        #: Set once a connection past the script (the sentinel's) has been answered.
        self.script_done = asyncio.Event()
        self.uri = ""
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ScriptedStreamServer:
        app = web.Application()
        app.router.add_get(STREAM_PATH, self._stream)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.uri = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.on_request()
        index = self.requests
        self.requests += 1
        if request.headers.get("Authorization") != self.autoconfig_key:
            self.unauthorized += 1  # a harness bug: the client must always send the key
            return web.Response(status=401)
        if index < len(self.script.connections):
            connection = self.script.connections[index]
            if connection.status != 200:
                return web.Response(status=connection.status, text="scripted failure\n")
            chunks = connection.chunks
            endless = connection.endless
        else:
            body = json.dumps({"path": f"/environments/{SENTINEL_ID}", "data": SENTINEL})
            chunks = (f"event: patch\ndata: {body}\n\n".encode(),)
            endless = False
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for chunk in chunks:
                await response.write(chunk)
                await asyncio.sleep(0)
            if endless:
                sent = 0
                while sent < ENDLESS_CAP:  # until the client hangs up
                    await response.write(_ENDLESS_LINE * 16)
                    sent += len(_ENDLESS_LINE) * 16
            if index >= len(self.script.connections):
                self.script_done.set()
                await self._closing.wait()
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client dropped the connection, as it may
        return response
