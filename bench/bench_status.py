"""Benchmark: the cost of ``/status`` at 10,000 environments, and the stream delay it causes.

Run: ``.venv/bin/python -m bench.bench_status [--envs N,...] [--seconds S] [--quick]``

A :class:`StreamManager` (caching off) and its :class:`StatusServer` run in this process, on one
event loop, as in ``autoconfig-cache run``. The AutoConfig stream server runs in a second
process and the HTTP load (``--concurrency`` keep-alive connections requesting in a loop for
``--seconds``) in a third, so neither counts here.

1. **Throughput**: ``/status`` requests per second, as a ratio to requests per second for the
   same bytes served prebuilt by a bare aiohttp handler in the same process (the floor: HTTP
   and transfer of a body that size, with no work). Target >= 0.5.
   For comparison, the same with the environment part rendered on every request (the behaviour
   before it was cached) is printed as a second figure.
2. **Stream delay**: time from a patch sent to the stream server (from a thread, off the event
   loop) until the manager's handler has applied it, median of ``--patches``, while ``/status``
   is requested continuously, as a ratio to the same with no requests (the floor). Target <= 2.
   The same with rendering on every request is printed as a second figure.
3. **Event-loop time per request**: one cached ``/status`` body built in-process, as a ratio to
   one full render of the environment part (the cost every request paid before).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.models import Environment
from autoconfig_cache.service.status import StatusServer
from autoconfig_cache.stream import BaseHandler, SnapshotSource, StreamClient, StreamManager
from bench.common import Result, add_common_arguments, at_size, best_of, emit, environment_json

KEY = "bench-" + secrets.token_hex(16)


class RenderEveryTime(StatusServer):
    """The behaviour before the environment part was cached: rendered for every request."""

    def status_body(self) -> bytes:
        self._items_version = None
        return super().status_body()


class PatchHandler(BaseHandler):
    """Records when each patched environment's version was applied."""

    def __init__(self) -> None:
        self.applied: dict[int, float] = {}
        self.changed = asyncio.Event()
        self.ready = asyncio.Event()

    def on_all_environments_received(self, source: SnapshotSource) -> None:
        self.ready.set()

    def on_environment_updated(self, env: Environment) -> None:
        self.applied[env.version] = time.perf_counter()
        self.changed.set()


# ---- the load generator (a separate process) ------------------------------------------------


async def _hammer(url: str, seconds: float, concurrency: int) -> int:
    import aiohttp

    done = 0
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            async with session.get(url) as response:
                await response.read()
                if response.status == 200:
                    done += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return done


def hammer_process(url: str, seconds: float, concurrency: int) -> subprocess.Popen[str]:
    """Start a process that requests ``url`` for ``seconds``; it prints how many succeeded."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.bench_status", "--hammer", url),
            *("--seconds", str(seconds), "--concurrency", str(concurrency)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def hammer_result(proc: subprocess.Popen[str]) -> int:
    out, _ = proc.communicate(timeout=600)
    return int(out.strip().splitlines()[-1])


# ---- the measured side ----------------------------------------------------------------------


def start_stream_server(snapshot_file: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "autoconfig_cache.stream"),
            *("--snapshot", str(snapshot_file), "--heartbeat", "60"),
        ],
        env={**os.environ, "AUTOCONFIG_KEY": KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    return proc, banner.split(" on ", 1)[1].split(" ", 1)[0]


def send_patch(stream_uri: str, env: dict[str, Any], version: int) -> float:
    """POST a patch to the stream server (blocking, from a thread); return when it was sent."""
    body = json.dumps(
        {"path": f"/environments/{env['envID']}", "data": {**env, "version": version}}
    ).encode()
    request = urllib.request.Request(f"{stream_uri}/control/patch", data=body, method="POST")
    request.add_header("Authorization", KEY)
    sent = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return sent


async def patch_delays(
    stream_uri: str, handler: PatchHandler, env: dict[str, Any], versions: list[int]
) -> list[float]:
    """Seconds from sending each patch to its application, one patch at a time."""
    delays = []
    for version in versions:
        sent = await asyncio.to_thread(send_patch, stream_uri, env, version)
        while version not in handler.applied:
            handler.changed.clear()
            await asyncio.wait_for(handler.changed.wait(), 60)
        delays.append(handler.applied[version] - sent)
        await asyncio.sleep(0.05)
    return delays


async def main_async(args: argparse.Namespace) -> list[Result]:
    n = args.environments
    envs = {f"{i:024x}": environment_json(f"{i:024x}") for i in range(n)}
    target = envs[next(iter(envs))]
    with tempfile.TemporaryDirectory() as tmp:
        snapshot_file = Path(tmp) / "snapshot.json"
        snapshot_file.write_text(json.dumps({"environments": envs, "filters": {}}))
        stream_proc, stream_uri = start_stream_server(snapshot_file)
        try:
            return at_size(await measure(args, stream_uri, target), n)
        finally:
            stream_proc.terminate()
            stream_proc.wait()


async def measure(
    args: argparse.Namespace, stream_uri: str, target: dict[str, Any]
) -> list[Result]:
    handler = PatchHandler()
    manager = StreamManager(AutoConfigCache.null(), handler, client=StreamClient(stream_uri, KEY))
    version = 1_000
    results: list[Result] = []
    notes = f"{args.environments:,} environments, {args.concurrency} connections, {args.seconds} s"
    async with manager:
        await asyncio.wait_for(handler.ready.wait(), 300)
        servers: dict[str, StatusServer] = {}
        for name, cls in (("cached", StatusServer), ("every", RenderEveryTime)):
            server = cls(manager, store_scheme="none", store_format="v2", host="127.0.0.1", port=0)
            await server.start()
            servers[name] = server
        try:
            rates: dict[str, float] = {}
            delays: dict[str, float] = {}

            def versions(count: int) -> list[int]:
                nonlocal version
                version += count
                return list(range(version - count + 1, version + 1))

            delays["idle"] = statistics.median(
                await patch_delays(stream_uri, handler, target, versions(args.patches))
            )
            floor_url, floor_runner = await static_server(servers["cached"].status_body())
            for label, url in (
                ("floor", floor_url),
                ("cached", f"http://127.0.0.1:{servers['cached'].port}/status"),
                ("every", f"http://127.0.0.1:{servers['every'].port}/status"),
            ):
                proc = await asyncio.to_thread(hammer_process, url, args.seconds, args.concurrency)
                if label != "floor":
                    await asyncio.sleep(min(0.5, args.seconds / 5))  # the load is running
                    delays[label] = statistics.median(
                        await patch_delays(stream_uri, handler, target, versions(args.patches))
                    )
                count = await asyncio.to_thread(hammer_result, proc)
                rates[label] = count / args.seconds
            body_time = best_of(20, servers["cached"].status_body)
            render_time = best_of(5, servers["every"].status_body)
            await floor_runner.cleanup()
        finally:
            for server in servers.values():
                await server.close()
    results += [
        Result(
            "status: /status requests/s (cached)",
            rates["cached"],
            "req/s",
            floor=rates["floor"],
            floor_name="same bytes prebuilt",
            target=">= 0.5",
            notes=notes,
        ),
        Result(
            "status: /status requests/s (rendered per request)",
            rates["every"],
            "req/s",
            floor=rates["floor"],
            floor_name="same bytes prebuilt",
            notes="the behaviour before the environment part was cached, for comparison",
        ),
        Result(
            "status: stream patch delay under /status load (cached)",
            delays["cached"] * 1000,
            "ms",
            floor=delays["idle"] * 1000,
            floor_name="no requests",
            target="<= 2",
            notes=f"median of {args.patches} patches",
        ),
        Result(
            "status: stream patch delay under /status load (rendered per request)",
            delays["every"] * 1000,
            "ms",
            floor=delays["idle"] * 1000,
            floor_name="no requests",
            notes="the behaviour before, for comparison",
        ),
        Result(
            "status: event-loop time of one /status body (cached)",
            body_time * 1000,
            "ms",
            floor=render_time * 1000,
            floor_name="full render",
            target="<= 0.2",
        ),
    ]
    return results


async def static_server(body: bytes) -> tuple[str, web.AppRunner]:
    """A bare aiohttp server answering ``body`` (prebuilt) on every request: the floor."""

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}/", runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--environments", type=int, default=10_000, help="one size")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--patches", type=int, default=9)
    add_common_arguments(parser)  # --quick: 2 s of load, 5 patches
    parser.add_argument("--hammer", help=argparse.SUPPRESS)  # the load generator's process
    args = parser.parse_args()
    if args.hammer:
        print(asyncio.run(_hammer(args.hammer, args.seconds, args.concurrency)))
        return
    if args.quick:
        args.seconds, args.patches = 2.0, 5
    results: list[Result] = []
    # At 10,000 environments unless --envs says otherwise (--quick keeps the size: the cost of
    # /status is what it measures, and 2 s of load keeps the run short).
    for count in args.envs or [args.environments]:
        args.environments = count
        results += asyncio.run(main_async(args))
    emit(results, args.json)


if __name__ == "__main__":
    main()
