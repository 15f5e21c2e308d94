"""Benchmark: a ``put`` of 10,000 environments (~10 MB event) through the stream manager.

Run: ``.venv/bin/python bench/bench_stream.py [--environments N] [--runs R]``

The put is served by the local AutoConfig stream server in a separate process (so its memory
does not count here) and received by a :class:`StreamManager` with caching off.

1. **Latency**: time from the last byte of the put received by the client to the handler's
   ``on_all_environments_received``, as a ratio to ``json.loads`` of the same event data (the
   floor, measured in the same run). Target <= 2. Median of ``--runs`` fresh connections.
2. **Memory**: with tracemalloc, the memory held for the environments once the put is applied,
   and the peak while receiving it, as ratios to the raw JSON size. Target (held) <= 3. The
   memory held by a bare ``json.loads`` of the payload is printed as a second floor.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.stream import BaseHandler, SnapshotSource, StreamClient, StreamManager
from bench.common import Result, emit

KEY = "bench-" + secrets.token_hex(16)


def environment(i: int, shape: str = "padded") -> dict[str, Any]:
    """An environment: ``padded`` (about 1 KB, with fields this project does not know, so that
    10,000 make the ~10 MB put of the issue) or ``minimal`` (only the AutoConfig fields)."""
    env_id = f"{i:024x}"
    env = {
        "envID": env_id,
        "envKey": f"environment-{i}",
        "envName": f"Environment number {i} of the benchmark project",
        "mobKey": f"mob-{secrets.token_hex(18)}",
        "projKey": f"project-{i % 100}",
        "projName": f"Benchmark project {i % 100}",
        "sdkKey": {
            "value": f"sdk-{secrets.token_hex(18)}",
            "expiring": {"value": f"sdk-{secrets.token_hex(18)}", "timestamp": 1_700_000_000_000},
        },
        "defaultTtl": 5,
        "secureMode": bool(i % 2),
        "version": 1 + i % 7,
    }
    if shape == "minimal":
        return env
    # Fields from a newer schema: kept verbatim, so they count in memory too.
    env.update(
        {
            "description": "Benchmark environment used to measure put processing. " * 5,
            "tags": [f"tag-{i % 13}", f"team-{i % 17}", "benchmark", "autoconfig"],
            "settings": {
                "streaming": True,
                "pollingIntervalSeconds": 30,
                "region": "us-east-1",
                "approvals": {"required": bool(i % 3), "minCount": i % 4},
            },
        }
    )
    return env


class TimingHandler(BaseHandler):
    def __init__(self) -> None:
        self.done_at: float | None = None
        self.done_cpu: float | None = None
        self.done = asyncio.Event()

    def on_all_environments_received(self, source: SnapshotSource) -> None:
        if source is SnapshotSource.STREAM:
            self.done_at = time.perf_counter()
            self.done_cpu = time.thread_time()
            self.done.set()


class TimingClient(StreamClient):
    """Notes the CPU time of this thread when each chunk arrives (wall time: ``state``)."""

    last_read_cpu = 0.0

    async def _dispatch(self, parser: Any, chunk: bytes, on_event: Any) -> None:
        self.last_read_cpu = time.thread_time()
        await super()._dispatch(parser, chunk, on_event)


async def start_server(snapshot_file: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autoconfig_cache.stream",
        "--snapshot",
        str(snapshot_file),
        "--heartbeat",
        "60",
        env={**os.environ, "AUTOCONFIG_KEY": KEY},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    banner = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    uri = banner.split(" on ", 1)[1].split(" ", 1)[0]
    return proc, uri


async def receive_once(uri: str) -> tuple[float, float, StreamManager]:
    """Wall and CPU seconds from the last byte to all-environments-received, and the manager."""
    handler = TimingHandler()
    client = TimingClient(uri, KEY)
    manager = StreamManager(AutoConfigCache.null(), handler, client=client)
    await manager.start()
    await asyncio.wait_for(handler.done.wait(), 120)
    assert handler.done_at is not None and handler.done_cpu is not None
    assert client.state.last_read_monotonic is not None
    return (
        handler.done_at - client.state.last_read_monotonic,
        handler.done_cpu - client.last_read_cpu,
        manager,
    )


def time_json_loads(event_data: str) -> tuple[float, float]:
    """Wall and CPU seconds of one ``json.loads`` of the payload (the floor)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    json.loads(event_data)
    return time.perf_counter() - wall, time.thread_time() - cpu


async def main_async(n_envs: int, runs: int, shape: str, json_path: Path | None = None) -> None:
    envs: dict[str, Any] = {}
    data: dict[str, Any] = {"environments": envs, "filters": {}}
    for i in range(n_envs):
        env = environment(i, shape)
        envs[env["envID"]] = env
    event_data = json.dumps({"path": "/", "data": data}, separators=(",", ":"))
    raw_size = len(event_data.encode())
    with tempfile.TemporaryDirectory() as tmp:
        snapshot_file = Path(tmp) / "snapshot.json"
        snapshot_file.write_text(json.dumps(data))
        del data, envs
        proc, uri = await start_server(snapshot_file)
        try:
            # ---- latency: each run is followed by a floor measurement, to share conditions ----
            latencies, cpu_latencies, floors, cpu_floors = [], [], [], []
            for _ in range(runs):
                latency, cpu_latency, manager = await receive_once(uri)
                assert len(manager.snapshot().environments) == n_envs
                await manager.close()
                del manager
                gc.collect()
                floor, cpu_floor = time_json_loads(event_data)
                gc.collect()
                latencies.append(latency)
                cpu_latencies.append(cpu_latency)
                floors.append(floor)
                cpu_floors.append(cpu_floor)
            ratios = [a / b for a, b in zip(latencies, floors, strict=True)]
            cpu_ratios = [a / b for a, b in zip(cpu_latencies, cpu_floors, strict=True)]
            gc.disable()
            floor_no_gc = statistics.median(time_json_loads(event_data)[1] for _ in range(3))
            gc.enable()
            gc.collect()

            # ---- memory ----
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            parsed = json.loads(event_data)
            gc.collect()
            json_held = tracemalloc.get_traced_memory()[0] - base
            del parsed
            gc.collect()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            _, _, manager = await receive_once(uri)
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            held, peak_used = current - base, peak - base
            tracemalloc.stop()
            await manager.close()
        finally:
            proc.terminate()
            await proc.wait()

    mb = 1024 * 1024
    print(f"put: {n_envs} {shape} environments, event data {raw_size / mb:.2f} MiB")

    def ms(values: list[float]) -> str:
        return ", ".join(f"{v * 1000:.0f}" for v in values)

    print(
        f"floor json.loads, wall      : {statistics.median(floors) * 1000:8.1f} ms median "
        f"(runs {ms(floors)})"
    )
    print(
        f"last byte -> all received   : {statistics.median(latencies) * 1000:8.1f} ms median "
        f"(runs {ms(latencies)})"
    )
    print(
        f"ratio, wall time            : {statistics.median(ratios):8.2f}   median of per-run "
        f"ratios; best {min(ratios):.2f} (target <= 2)"
    )
    print(
        f"ratio, CPU time             : {statistics.median(cpu_ratios):8.2f}   median of per-run "
        f"ratios; best {min(cpu_ratios):.2f} (CPU time ignores other processes' load)"
    )
    print(
        f"ratio, CPU, floor gc off    : {statistics.median(cpu_latencies) / floor_no_gc:8.2f}   "
        "(floor: json.loads with gc disabled, as the manager pauses gc during a put)"
    )
    print(
        f"memory held (10k envs)      : {held / mb:8.2f} MiB = {held / raw_size:.2f}x raw JSON "
        "(target <= 3)"
    )
    print(
        f"  floor: json.loads held    : {json_held / mb:8.2f} MiB = {json_held / raw_size:.2f}x "
        f"raw JSON; manager / json.loads = {held / json_held:.2f}"
    )
    print(
        f"peak while receiving        : {peak_used / mb:8.2f} MiB = {peak_used / raw_size:.2f}x "
        "raw JSON"
    )
    if json_path is not None:  # for bench/run
        name = f"stream put, {n_envs} {shape} envs"
        emit(
            [
                Result(
                    f"{name}: last byte -> all received, wall",
                    statistics.median(latencies),
                    "s",
                    statistics.median(floors),
                    "json.loads of the event",
                    "<= 2",
                    f"median of per-run ratios {statistics.median(ratios):.2f}",
                ),
                Result(
                    f"{name}: last byte -> all received, CPU",
                    statistics.median(cpu_latencies),
                    "s",
                    statistics.median(cpu_floors),
                    "json.loads of the event (CPU)",
                    "<= 2",
                    f"median of per-run ratios {statistics.median(cpu_ratios):.2f}",
                ),
                Result(
                    f"{name}: memory held",
                    held / mb,
                    "MiB",
                    raw_size / mb,
                    "raw JSON size",
                    "<= 3",
                    f"json.loads alone holds {json_held / raw_size:.2f}x",
                ),
            ],
            json_path,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--environments", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--shape", choices=["padded", "minimal"], default="padded")
    parser.add_argument("--json", type=Path, help="append results as JSON lines (bench/run)")
    parser.add_argument("--quick", action="store_true", help="1,000 environments, 3 runs")
    args = parser.parse_args()
    if args.quick:
        args.environments, args.runs = 1_000, 3
    asyncio.run(main_async(args.environments, args.runs, args.shape, args.json))


if __name__ == "__main__":
    main()
