"""Benchmark: a ``put`` of N environments (~0.9 KB each: 10,000 make an 8.8 MiB event) through
the stream manager.

Run: ``.venv/bin/python -m bench.bench_stream [--envs 1000,10000,100000] [--runs R] [--quick]``

The put is served by the local AutoConfig stream server in a separate process (so its memory
does not count here) and received by a :class:`StreamManager` with caching off. At each size:

1. **Latency**: time from the last byte of the put received by the client to the handler's
   ``on_all_environments_received``, as a ratio to ``json.loads`` of the same event data (the
   floor), each run paired with a floor run right after it; the median of the per-run ratios
   of ``--runs`` fresh connections. Goal <= 1.0. The same in CPU time of the thread is printed.
2. **Memory held**: with ``tracemalloc``, the memory still allocated once the put is applied
   (the manager's snapshot: everything it keeps for those environments), as a ratio to the raw
   JSON size of the event. Goal <= 1.5. The memory a bare ``json.loads`` holds is in the notes.
3. **Peak memory while receiving**: ``tracemalloc``'s peak (reset just before) over the whole
   receive of the event: connecting, reading the chunks, parsing, validating and the handler,
   less what was allocated before; as a ratio to the raw JSON size. Goal <= 4. ``tracemalloc``
   sees every allocation made through Python's allocators (bytes, str, dicts, models: all the
   copies of the event) but not the C libraries' own buffers (OpenSSL, the kernel's socket
   buffers), which are small and do not grow with the event.
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
from bench.common import Result, add_common_arguments, emit, envs_label, paired, sizes

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


async def measure(n_envs: int, runs: int, shape: str) -> list[Result]:
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

    wall, wall_floor, wall_ratio = paired(latencies, floors)
    cpu, cpu_floor, cpu_ratio = paired(cpu_latencies, cpu_floors)
    print(f"  CPU, floor json.loads with gc off: ratio {cpu / floor_no_gc:.2f}")
    name = f"stream put, {envs_label(n_envs)} ({shape}, {raw_size / mb:.1f} MiB)"
    figure = f"stream put ({shape})"
    return [
        Result(
            f"{name}: last byte -> handler done, wall",
            wall,
            "s",
            wall_floor,
            "json.loads of the event",
            "<= 1.0",
            f"median of per-run ratios; best {min(a / b for a, b in zip(latencies, floors, strict=True)):.2f}; "
            f"runs {ms(latencies)} ms, floor {ms(floors)} ms",
            envs=n_envs,
            figure=f"{figure}: last byte -> handler done",
            paired_ratio=wall_ratio,
        ),
        Result(
            f"{name}: last byte -> handler done, CPU",
            cpu,
            "s",
            cpu_floor,
            "json.loads of the event (CPU)",
            "-",
            "CPU time of the thread, which other processes' load does not inflate; floor "
            f"with gc off (the manager pauses gc during a put): ratio {cpu / floor_no_gc:.2f}",
            envs=n_envs,
            figure=f"{figure}: last byte -> handler done, CPU",
            paired_ratio=cpu_ratio,
        ),
        Result(
            f"{name}: memory held",
            held / mb,
            "MiB",
            raw_size / mb,
            "raw JSON size",
            "<= 1.5",
            f"tracemalloc after the put is applied; json.loads alone holds "
            f"{json_held / raw_size:.2f}x",
            envs=n_envs,
            figure=f"{figure}: memory held",
        ),
        Result(
            f"{name}: peak memory while receiving",
            peak_used / mb,
            "MiB",
            raw_size / mb,
            "raw JSON size",
            "<= 4",
            "tracemalloc peak from connect to handler done, less the memory allocated before",
            envs=n_envs,
            figure=f"{figure}: peak memory while receiving",
        ),
    ]


async def main_async(counts: list[int], runs: int | None, shape: str) -> list[Result]:
    results: list[Result] = []
    for count in counts:
        start = time.monotonic()
        # Fewer runs at 100,000, where one run takes seconds.
        results += await measure(count, runs or (7 if count <= 10_000 else 3), shape)
        print(f"bench_stream: {envs_label(count)} in {time.monotonic() - start:.0f} s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_arguments(parser)
    parser.add_argument("--runs", type=int, help="runs per size (default 7; 3 above 10,000)")
    parser.add_argument("--shape", choices=["padded", "minimal"], default="padded")
    args = parser.parse_args()
    runs = 3 if args.quick and args.runs is None else args.runs
    emit(asyncio.run(main_async(sizes(args), runs, args.shape)), args.json)


if __name__ == "__main__":
    main()
