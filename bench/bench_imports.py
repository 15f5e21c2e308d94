"""Benchmark: the imports of ``autoconfig-cache run``, before it does any work.

Run: ``.venv/bin/python -m bench.bench_imports [--quick] [--json out.jsonl]``. No server needed.

* **Measured**: wall time from ``Popen`` to exit of a fresh ``python`` that imports what
  ``autoconfig-cache run`` imports before its event loop starts with an SQLite store: the
  command line (``autoconfig_cache.cli.main``), the service (``autoconfig_cache.service.runner``),
  plugin discovery (every installed plugin's entry point, ``get_registry()``) and the SQLite
  store. It does no work: no configuration, no store, no stream. The status server is served
  by asyncio and h11, and the stream client imports aiohttp only when it first connects (once
  the cache read has ended): aiohttp is not on this path.
* **Also measured** (no goal): the same plus ``aiohttp``, everything the process has imported
  once its stream has connected; it shows what the deferral moved off the start path.
* **Floor**: the same for a ``python`` that imports only ``aiohttp.web`` (an HTTP framework)
  and ``cryptography``'s AES-GCM (the cache's cipher), the issue's definition of the least a
  process serving this data over HTTP must import.

Both include the interpreter's own start. Rounds are interleaved (floor, then ``run``) so that
load on the machine hits both alike. The import time is reported absolutely with its
run-to-run spread (min / median / max of ``ROUNDS`` runs) as well as its ratio to the floor's
median, measured in the same run.

The project's modules are compiled to bytecode first (:func:`bench.common.compile_project`), as
an installed package's are: without it, a checkout run with ``PYTHONDONTWRITEBYTECODE`` would
time the compilation of every project module from source, which no real start pays.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence

from bench.common import Result, arguments, compile_project, emit, median

ROUNDS = 15
QUICK_ROUNDS = 5

#: What ``autoconfig-cache run`` imports before it starts the event loop (SQLite store).
START_PATH = """
import autoconfig_cache.cli.main
import autoconfig_cache.service.runner
import autoconfig_cache.stores.sqlite
from autoconfig_cache.plugins import get_registry
get_registry()
"""

#: ``START_PATH`` and what the stream client imports when it first connects.
WITH_STREAM_CLIENT = START_PATH + "import aiohttp\n"

#: The issue's floor: the HTTP framework and the cipher, nothing else.
FLOOR = """
import aiohttp.web
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
"""


def wall_time(code: str) -> float:
    """Seconds from start to exit of a fresh ``python -c code`` (it must succeed)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def spread(times: Sequence[float]) -> str:
    """min / median / max of ``times``, in milliseconds."""
    return (
        f"min {min(times) * 1000:.0f} / median {median(times) * 1000:.0f} / "
        f"max {max(times) * 1000:.0f} ms"
    )


def main() -> None:
    args = arguments(__doc__ or "")
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    compile_project()
    wall_time(START_PATH)  # warm the file cache and the bytecode of both, not measured
    wall_time(FLOOR)
    wall_time(WITH_STREAM_CLIENT)
    floor_times: list[float] = []
    run_times: list[float] = []
    full_times: list[float] = []
    for _ in range(rounds):
        floor_times.append(wall_time(FLOOR))
        run_times.append(wall_time(START_PATH))
        full_times.append(wall_time(WITH_STREAM_CLIENT))
    floor_text = f"floor {spread(floor_times)}"
    results = [
        Result(
            benchmark="imports of `autoconfig-cache run` (SQLite), median",
            measured=median(run_times),
            unit="s",
            floor=median(floor_times),
            floor_name="python importing only aiohttp.web + AESGCM",
            target="<= 1.2x",
            notes=f"{rounds} fresh processes each: run {spread(run_times)}; {floor_text}",
        ),
        Result(
            benchmark="imports of `autoconfig-cache run` (SQLite) and its stream client, median",
            measured=median(full_times),
            unit="s",
            floor=median(floor_times),
            floor_name="python importing only aiohttp.web + AESGCM",
            target="-",
            notes=f"{rounds} fresh processes each: {spread(full_times)}; {floor_text}",
        ),
    ]
    emit(results, args.json)


if __name__ == "__main__":
    main()
