"""The benchmark harness's own logic: goals checked, per-run ratios, growth (no timing here)."""

from __future__ import annotations

import argparse

import pytest

from bench.common import Result, paired, parse_sizes
from bench.growth import growth


def result(measured: float, floor: float | None, target: str, envs: int | None = None) -> Result:
    return Result("figure", measured, "s", floor, "floor", target, envs=envs, figure="figure")


@pytest.mark.parametrize(
    ("measured", "floor", "target", "holds"),
    [
        (2.0, 2.0, "<= 1.05", True),
        (2.2, 2.0, "<= 1.05", False),
        (0.4, 2.0, "<= 0.25", True),
        (0.6, 2.0, "<= 0.25", False),
        (2.0, 2.0, "<= 1.2x", True),
        (0.8, 2.0, ">= 0.5", False),
        (1.2, 2.0, ">= 0.5", True),
        (0, None, "0", True),
        (3, None, "0", False),
        (3, 1.0, "O(1)", None),
        (3, 1.0, "-", None),
        (3, None, "", None),
    ],
)
def test_holds_compares_the_ratio_or_the_value_with_the_target(
    measured: float, floor: float | None, target: str, holds: bool | None
) -> None:
    assert result(measured, floor, target).holds is holds


def test_paired_ratio_is_the_median_of_per_run_ratios_not_the_ratio_of_medians() -> None:
    measured, floor, ratio = paired([1.0, 4.0, 10.0], [1.0, 2.0, 20.0])
    assert (measured, floor) == (4.0, 2.0)
    assert ratio == 1.0  # per run: 1.0, 2.0, 0.5
    r = Result("figure", measured, "s", floor, target="<= 1.05", paired_ratio=ratio)
    assert r.ratio == 1.0 and r.holds is True


def test_growth_holds_up_to_11x_from_10k_to_100k() -> None:
    rows = growth(
        [
            result(1.0, 2.0, "<= 1", 10_000),
            result(11.0, 20.0, "<= 1", 100_000),
            Result("other", 1.0, "s", target="<= 1", envs=10_000, figure="other"),
            Result("other", 11.5, "s", target="<= 1", envs=100_000, figure="other"),
        ]
    )
    by_name = {g.series: g for g in rows}
    assert by_name["figure"].measured == 11.0 and by_name["figure"].floor == 10.0
    assert by_name["figure"].holds is True
    assert by_name["other"].holds is False


def test_growth_skips_a_count_that_stays_zero_and_fails_one_that_appears() -> None:
    stays = [result(0, None, "0", 10_000), result(0, None, "0", 100_000)]
    assert growth(stays) == []
    appears = growth([result(0, None, "0", 10_000), result(5, None, "0", 100_000)])
    assert [g.holds for g in appears] == [False]


def test_sizes_parse_thousands_and_sort() -> None:
    assert parse_sizes("100k,1000, 10_000") == [1_000, 10_000, 100_000]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_sizes("0")
