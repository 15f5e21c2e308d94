"""The growth chart of ``docs/benchmarks.md``: time and memory against the number of
environments, the project's figures (solid) beside their floors (dashed), log-log.

Drawn with matplotlib's Agg backend (no display), a dev dependency: only ``bench/run`` imports
this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import Result
from bench.growth import by_series

#: Units drawn, converted to the panel's unit.
TO_SECONDS = {"s": 1.0, "ms": 1e-3}
TO_MIB = {"MiB": 1.0}

#: The panels: a title and which series (by prefix) each draws.
PANELS = (
    ("Redis: cold get_all and put (time)", ("Redis cold get_all", "Redis put"), TO_SECONDS),
    (
        "Stream put and start-up (time)",
        ("stream put (padded): last byte -> handler done", "start to /readyz 200"),
        TO_SECONDS,
    ),
    ("Stream put (memory)", ("stream put (padded): memory", "stream put (padded): peak"), TO_MIB),
)


def _checked(result: Result) -> bool:
    """Only figures with a goal are drawn: the chart shows the issue's rows."""
    return result.holds is not None or result.target.startswith(("<", ">"))


def draw(results: Sequence[Result], path: Path) -> Path | None:
    """Draw the chart to ``path`` (PNG); ``None`` when no figure was measured at two sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = {
        name: at
        for name, at in by_series(results).items()
        if len(at) >= 2 and _checked(next(iter(at.values())))
    }
    if not grouped:
        return None
    figure, axes = plt.subplots(1, len(PANELS), figsize=(7 * len(PANELS), 7.5))
    for ax, (title, prefixes, units) in zip(axes, PANELS, strict=True):
        seen: set[tuple[float, ...]] = set()
        colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
        for name, at in grouped.items():
            if not name.startswith(prefixes):
                continue
            first = next(iter(at.values()))
            if first.unit not in units:
                continue
            scale = units[first.unit]
            counts = sorted(at)
            ours = tuple(at[n].measured * scale for n in counts)
            floors = [at[n].floor for n in counts]
            color = next(colors)
            if ours not in seen:
                seen.add(ours)
                ax.plot(counts, ours, "o-", color=color, label=name)
            if all(f is not None for f in floors):
                line = tuple(float(f) * scale for f in floors if f is not None)
                if line not in seen:
                    seen.add(line)
                    label = f"floor of {name}: {first.floor_name}"
                    ax.plot(counts, line, "x--", color=color, label=label)
        _style(ax, title, "seconds" if units is TO_SECONDS else "MiB")
    figure.suptitle("Growth with the number of environments (solid: project; dashed: floors)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _style(ax: Any, title: str, unit: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("environments")
    ax.set_ylabel(unit)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, frameon=False)
