"""Shared pieces of the benchmarks: results, ratio tables, JSON output for ``bench/run``.

Every benchmark compares the project against a *floor* measured in the same run on the same
data (raw client calls with no framework around them) and reports the ratio, never an absolute
time judged against a constant.
"""

from __future__ import annotations

import argparse
import json
import operator
import re
import secrets
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from autoconfig_cache.codec.keys import DerivedKey

#: The sizes every scaling benchmark runs at (issue 14: 1,000, 10,000 and 100,000 environments).
FULL_SIZES = (1_000, 10_000, 100_000)
#: ``--quick``: small sizes, still two of them so that the growth is computed.
QUICK_SIZES = (200, 1_000)
#: Growth of a figure from one size to a size 10x larger may be at most this (linear, + 10%).
GROWTH_LIMIT_PER_10X = 11.0

_TARGET = re.compile(r"^\s*(<=|>=|<|>|=|==)?\s*([0-9]*\.?[0-9]+)\s*x?\s*$")
_COMPARE = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "=": operator.eq,
    "==": operator.eq,
    None: operator.eq,
}


@attrs.frozen
class Result:
    """One benchmark figure: what was measured, against which floor, and the target.

    ``target`` is the issue's goal: ``"<= 1.05"`` (the ratio to the floor, or the measured
    value when there is no floor), ``">= 0.5"``, ``"0"``; anything else (``"O(1)"``, ``"-"``)
    is shown but not checked. ``figure`` names the figure without its size and ``envs`` is the
    number of environments it was measured at: the growth table and chart follow a figure
    across sizes. ``paired_ratio``, when set, is the ratio reported (the median of per-run
    ratios of interleaved pairs) instead of ``measured / floor``.
    """

    benchmark: str
    measured: float
    unit: str
    floor: float | None = None
    floor_name: str = ""
    target: str = ""
    notes: str = ""
    envs: int | None = None
    figure: str = ""
    paired_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        """The median of per-run ratios if measured so, else measured / floor."""
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.floor in (None, 0):
            return None
        return self.measured / self.floor

    @property
    def series(self) -> str:
        """The figure's name across sizes (the benchmark name when no ``figure`` is given)."""
        return self.figure or self.benchmark

    @property
    def holds(self) -> bool | None:
        """Whether the target holds; ``None`` when there is no checkable target."""
        match = _TARGET.match(self.target or "")
        if match is None:
            return None
        value = self.ratio if self.floor is not None else self.measured
        if value is None:
            return None
        return bool(_COMPARE[match.group(1)](value, float(match.group(2))))

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "ratio": self.ratio, "holds": self.holds}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        """The result :meth:`to_json` wrote (derived keys ignored)."""
        fields = {field.name for field in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def at_size(results: Sequence[Result], count: int) -> list[Result]:
    """``results`` measured at ``count`` environments by a benchmark whose names do not say it
    in the common way: each gets ``envs`` and a ``figure`` without the count (for the growth
    table), and its name says the count."""
    sized = []
    for r in results:
        figure = r.figure or r.benchmark.replace(f", {count} items", "")
        name = r.benchmark if str(count) in r.benchmark else f"{r.benchmark}, {envs_label(count)}"
        sized.append(attrs.evolve(r, benchmark=name, envs=count, figure=figure))
    return sized


def holds_mark(result: Result) -> str:
    """``yes`` / ``NO`` / ``-`` for the tables."""
    return {True: "yes", False: "NO", None: "-"}[result.holds]


def paired(measured: Sequence[float], floors: Sequence[float]) -> tuple[float, float, float]:
    """Medians of interleaved runs and the median of their per-run ratios.

    Each run of the project is paired with the floor run next to it, so that load on the shared
    machine disturbs both alike; the median of those ratios is what the tables report.
    """
    ratios = [m / f for m, f in zip(measured, floors, strict=True)]
    return statistics.median(measured), statistics.median(floors), statistics.median(ratios)


def runs_text(values: Sequence[float], scale: float = 1000.0, unit: str = "ms") -> str:
    """``"runs 12, 13, 15 ms"``: every run, for the notes."""
    return "runs " + ", ".join(f"{v * scale:.3g}" for v in values) + f" {unit}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the servers a benchmark starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The project's importable code: the core package and the store plugins.
PROJECT_SOURCES = ("core", "plugins")


def compile_project() -> None:
    """Compile the project's modules to bytecode once, before timing processes that import them.

    An installed package has bytecode (pip compiles it at install time), but this editable
    checkout may have none: with ``PYTHONDONTWRITEBYTECODE`` set, every process a benchmark
    starts would compile every project module from source (~70 ms) while the floors' libraries
    load precompiled. ``compileall`` writes the ``__pycache__`` files whatever that variable
    says (it only stops the *import* system from writing), and the measured processes read them
    as any import does; each file is checked against its source's mtime, so an edit made since
    is recompiled here on the next run. ``__pycache__`` is in ``.gitignore``.
    """
    import compileall

    root = Path(__file__).resolve().parent.parent
    for folder in PROJECT_SOURCES:
        if not compileall.compile_dir(root / folder, quiet=1):
            raise RuntimeError(f"compileall failed under {root / folder}")


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


def relay_cipher(encryption_key: str) -> AESGCM:
    """The AES-GCM the ``relay`` format writes with (HKDF-SHA256, as current Relay Proxy
    releases derive it): what the floors decrypt and encrypt with."""
    return DerivedKey.from_string(encryption_key, setting="bench").relay_hkdf


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
    header = ("benchmark", "measured", "floor", "ratio", "target", "holds")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.benchmark,
                f"{r.measured:.4g} {r.unit}",
                f"{r.floor:.4g} {r.unit} ({r.floor_name})" if r.floor is not None else "-",
                f"{r.ratio:.2f}" if r.ratio is not None else "-",
                r.target or "-",
                holds_mark(r),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_sizes(text: str) -> list[int]:
    """``"1000,10000,100k"`` -> ``[1000, 10000, 100000]`` (sorted, ``k`` = thousand)."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if part:
            sizes.append(int(float(part[:-1]) * 1000) if part.endswith("k") else int(part))
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"not a list of positive sizes: {text!r}")
    return sorted(set(sizes))


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``--quick`` and ``--envs`` on ``parser`` (for benchmarks with options of
    their own)."""
    parser.add_argument("--json", type=Path, help="append results as JSON lines to this file")
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke run")
    parser.add_argument(
        "--envs",
        type=parse_sizes,
        help="numbers of environments, comma-separated (default: the benchmark's sizes; "
        f"{','.join(map(str, QUICK_SIZES))} with --quick)",
    )


def sizes(args: argparse.Namespace, default: Sequence[int] = FULL_SIZES) -> list[int]:
    """The sizes to run at: ``--envs``, else the quick sizes, else ``default``."""
    if args.envs:
        return list(args.envs)
    return list(QUICK_SIZES if args.quick else default)


def arguments(description: str) -> argparse.Namespace:
    """Common command line: ``--json PATH`` to append results for ``bench/run``, ``--quick``
    and ``--envs N,N,...`` (read with :func:`sizes`)."""
    parser = argparse.ArgumentParser(description=description)
    add_common_arguments(parser)
    return parser.parse_args()


def envs_label(count: int) -> str:
    """``10000`` -> ``"10,000 envs"``."""
    return f"{count:,} envs"


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
