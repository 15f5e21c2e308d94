"""How each figure grows with the number of environments (issue 14: at most linearly).

A figure measured at several sizes (``Result.envs``, grouped by ``Result.series``) grows from
one size to the next by ``measured(large) / measured(small)``. Linear growth from 10,000 to
100,000 environments is 10x; the goal allows 10% more (``GROWTH_LIMIT_PER_10X``), scaled to
the sizes compared.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

import attrs

from bench.common import GROWTH_LIMIT_PER_10X, Result


@attrs.frozen
class Growth:
    """One figure's growth between two sizes, beside its floor's."""

    series: str
    unit: str
    small: int
    large: int
    measured: float | None
    floor: float | None

    @property
    def limit(self) -> float:
        """Linear in the sizes, plus 10%: 11x from 10,000 to 100,000."""
        return GROWTH_LIMIT_PER_10X * (self.large / self.small) / 10

    @property
    def holds(self) -> bool | None:
        return None if self.measured is None else self.measured <= self.limit

    def to_json(self) -> dict[str, object]:
        return {"kind": "growth", **attrs.asdict(self), "limit": self.limit, "holds": self.holds}


def by_series(results: Sequence[Result]) -> dict[str, dict[int, Result]]:
    """Results measured at a size, by series then size (the last result wins)."""
    grouped: dict[str, dict[int, Result]] = defaultdict(dict)
    for r in results:
        if r.envs is not None:
            grouped[r.series][r.envs] = r
    return grouped


def _factor(large: float | None, small: float | None) -> float | None:
    """``large / small``; ``None`` without both; infinite from zero to more than zero."""
    if large is None or small is None or (small == 0 and large == 0):
        return None
    return large / small if small else float("inf")


def growth(results: Sequence[Result]) -> list[Growth]:
    """The growth of every figure between each pair of consecutive sizes it was measured at."""
    rows = []
    for series, at in by_series(results).items():
        counts = sorted(at)
        for small, large in itertools.pairwise(counts):
            a, b = at[small], at[large]
            if a.measured == 0 and b.measured == 0:
                continue  # nothing at either size (e.g. no encryption): nothing grows
            rows.append(
                Growth(
                    series,
                    a.unit,
                    small,
                    large,
                    _factor(b.measured, a.measured),
                    _factor(b.floor, a.floor),
                )
            )
    return rows


def format_factor(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def growth_rows(rows: Sequence[Growth]) -> list[tuple[str, ...]]:
    """Table rows: figure, sizes, growth, floor's growth, limit, holds."""
    mark = {True: "yes", False: "NO", None: "-"}
    return [
        (
            g.series,
            f"{g.small:,} -> {g.large:,}",
            format_factor(g.measured),
            format_factor(g.floor),
            f"<= {g.limit:.3g}x",
            mark[g.holds],
        )
        for g in rows
    ]


GROWTH_HEADER = ("figure", "sizes", "growth", "floor's growth", "goal", "holds")
