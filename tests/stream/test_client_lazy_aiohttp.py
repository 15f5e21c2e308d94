"""The stream client imports aiohttp only when it first connects, and then in a worker thread.

Each test runs a fresh interpreter: in this one aiohttp is long loaded (the local stream server
and the fixtures use it), so only a new process can show what importing and connecting load.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from autoconfig_cache.stream import StreamServer
from tests.import_watch import WATCH_AIOHTTP
from tests.items import env_json

from .conftest import AUTOCONFIG_KEY

# Imports the stream package and its client module, then reports which modules came with them.
IMPORT_PROBE = """
import json, sys
import autoconfig_cache.stream
import autoconfig_cache.stream.client
print(json.dumps({"loaded": [m for m in ("aiohttp", "urllib.request") if m in sys.modules]}))
"""

# Builds a client for the server at PROBE_STREAM_URI, notes whether aiohttp was loaded before
# and after the constructor, runs it until its first event, and says which threads imported
# aiohttp (True: the main thread, the event loop's).
CONNECT_PROBE = (
    WATCH_AIOHTTP
    + """
import asyncio, os

from autoconfig_cache.stream import BackoffPolicy, StreamClient

async def main():
    report = {"before_client": "aiohttp" in sys.modules}
    client = StreamClient(
        os.environ["PROBE_STREAM_URI"],
        os.environ["PROBE_AUTOCONFIG_KEY"],
        backoff=BackoffPolicy(base=0.01, maximum=0.05),
    )
    report["after_client"] = "aiohttp" in sys.modules
    first = asyncio.get_running_loop().create_future()

    async def on_event(event):
        if not first.done():
            first.set_result({"type": event.type, "data": json.loads(event.data)})

    task = asyncio.create_task(client.run(on_event))
    report["first_event"] = await asyncio.wait_for(first, 30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    report["aiohttp_imports"] = aiohttp_imports
    print(json.dumps(report))

asyncio.run(main())
"""
)


def test_importing_the_stream_package_loads_neither_aiohttp_nor_urllib_request() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"loaded": []}


async def run_connect_probe(server: StreamServer) -> dict[str, Any]:
    """The probe's report; run without blocking this loop, which serves the stream server."""
    environ = dict(os.environ, PROBE_STREAM_URI=server.uri, PROBE_AUTOCONFIG_KEY=AUTOCONFIG_KEY)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CONNECT_PROBE,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    report: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return report


async def test_a_client_built_without_aiohttp_imports_it_in_a_thread_and_gets_the_put(
    server: StreamServer,
) -> None:
    server.set_snapshot({"environments": {"env-lazy": env_json("env-lazy", 3)}})
    report = await run_connect_probe(server)
    # Neither importing the client nor building it loaded aiohttp ...
    assert report["before_client"] is False
    assert report["after_client"] is False
    # ... its first connection did, once, off the event loop's thread ...
    assert report["aiohttp_imports"] == [False]
    # ... and then received the server's put as usual.
    first = report["first_event"]
    assert first["type"] == "put"
    assert list(first["data"]["data"]["environments"]) == ["env-lazy"]
