"""Shared pieces of the benchmarks: results, ratio tables, JSON output for ``bench/run``.

Every benchmark compares the project against a *floor* measured in the same run on the same
data (raw client calls with no framework around them) and reports the ratio, never an absolute
time judged against a constant.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class Result:
    """One benchmark figure: what was measured, against which floor, and the target."""

    benchmark: str
    measured: float
    unit: str
    floor: float | None = None
    floor_name: str = ""
    target: str = ""
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        """measured / floor, when there is a floor."""
        if self.floor in (None, 0):
            return None
        return self.measured / self.floor

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "ratio": self.ratio}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the servers a benchmark starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def best_of(repeats: int, run: Callable[[], Any]) -> float:
    """The fastest of ``repeats`` timed runs of ``run`` (seconds): the least disturbed one."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


async def best_of_async(repeats: int, run: Callable[[], Awaitable[Any]]) -> float:
    """The fastest of ``repeats`` timed runs of the coroutine function ``run`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return min(times)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def environment_json(env_id: str, size: int = 1024, version: int = 1) -> dict[str, Any]:
    """An environment item padded to about ``size`` bytes of JSON."""
    item: dict[str, Any] = {
        "envID": env_id,
        "envKey": f"env-{env_id}",
        "envName": f"Environment {env_id}",
        "mobKey": f"mob-{secrets.token_hex(16)}",
        "projKey": "bench-project",
        "projName": "Benchmark project",
        "sdkKey": {"value": f"sdk-{secrets.token_hex(16)}"},
        "defaultTtl": 5,
        "secureMode": False,
        "version": version,
    }
    padding = size - len(json.dumps(item)) - len(',"description":""')
    item["description"] = "x" * max(0, padding)
    return item


def format_table(results: Sequence[Result]) -> str:
    """A plain-text table of results."""
    header = ("benchmark", "measured", "floor", "ratio", "target")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.benchmark,
                f"{r.measured:.4g} {r.unit}",
                f"{r.floor:.4g} {r.unit} ({r.floor_name})" if r.floor is not None else "-",
                f"{r.ratio:.2f}" if r.ratio is not None else "-",
                r.target or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def arguments(description: str) -> argparse.Namespace:
    """Common command line: ``--json PATH`` to append results for ``bench/run``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="append results as JSON lines to this file")
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke run")
    return parser.parse_args()


def emit(results: Sequence[Result], json_path: Path | None) -> None:
    """Print the table and, if asked, append the results as JSON lines."""
    print(format_table(results))
    for r in results:
        if r.notes:
            print(f"  {r.benchmark}: {r.notes}")
    if json_path is not None:
        with json_path.open("a") as out:
            for r in results:
                out.write(json.dumps(r.to_json()) + "\n")
