"""How the CLI's result tables choose column widths (pure logic, no server, no subprocess)."""

from __future__ import annotations

import io
import random

from rich.console import Console

from autoconfig_cache.cli.output import PIPED_WIDTH, results_width, shown
from autoconfig_cache.cli.tables import Column, Fit, ResultTable, fit_widths


def test_columns_keep_their_natural_width_when_they_fit() -> None:
    assert fit_widths([5, 30, 10], [5, 3, 3], 45) == [5, 30, 10]


def test_the_widest_column_gives_up_space_first() -> None:
    assert fit_widths([5, 30, 10], [5, 3, 3], 30) == [5, 15, 10]


def test_no_column_goes_below_its_floor() -> None:
    assert fit_widths([40, 40], [30, 5], 50) == [30, 20]


def test_space_left_under_the_cap_goes_back_to_the_narrowed_columns() -> None:
    assert fit_widths([10, 10, 10], [0, 0, 0], 20) == [7, 7, 6]


def test_floors_that_do_not_fit_give_no_widths() -> None:
    assert fit_widths([20, 20], [15, 15], 29) is None


def test_fitted_widths_respect_every_bound() -> None:
    rng = random.Random(12)
    for _ in range(2000):
        count = rng.randint(1, 8)
        natural = [rng.randint(1, 60) for _ in range(count)]
        floors = [rng.randint(0, 30) for _ in range(count)]
        available = rng.randint(0, 200)
        widths = fit_widths(natural, floors, available)
        lowest = [min(floor, width) for floor, width in zip(floors, natural, strict=True)]
        if sum(lowest) > available:
            assert widths is None
            continue
        assert widths is not None
        assert sum(widths) <= available
        assert all(low <= w <= n for low, w, n in zip(lowest, widths, natural, strict=True))
        # Narrowed columns are all within one character of each other (a common cap), unless
        # held up by their floor.
        narrowed = [w for low, w, n in zip(lowest, widths, natural, strict=True) if low < w < n]
        assert not narrowed or max(narrowed) - min(narrowed) <= 1


def rendered(table: ResultTable, width: int) -> list[str]:
    buffer = io.StringIO()
    table.print(Console(file=buffer, width=width, color_system=None))
    return buffer.getvalue().splitlines()


def test_a_wrapped_column_breaks_between_words_and_cuts_only_a_word_too_long() -> None:
    table = ResultTable([Column("name"), Column("note", Fit.WRAP, min_width=12)], wide=False)
    table.add_row(shown("a"), shown("alpha beta gamma " + "x" * 40))
    lines = rendered(table, 30)
    notes = [line.split("│")[2].strip() for line in lines if line.startswith("│")]
    assert notes[0] == "alpha beta gamma"  # broken between words
    (cut,) = notes[1:]  # the over-long word: one line, cut at the end, never folded
    assert cut.endswith("…") and set(cut[:-1]) == {"x"}
    assert all(len(line) <= 30 for line in lines)


def test_wide_shows_wide_only_columns_uncut_beyond_the_console_width() -> None:
    columns = [Column("id"), Column("detail", Fit.ABBREVIATE, wide_only=True)]
    narrow, wide = ResultTable(columns, wide=False), ResultTable(columns, wide=True)
    for table in (narrow, wide):
        table.add_row(shown("e1"), shown("d" * 100))
    assert not any("d" * 10 in line for line in rendered(narrow, 40))
    assert any("d" * 100 in line for line in rendered(wide, 40))


def test_results_are_80_columns_wide_when_stdout_is_not_a_terminal() -> None:
    assert results_width(io.StringIO(), environ={}) == PIPED_WIDTH == 80


def test_columns_or_a_terminal_leave_the_width_to_rich() -> None:
    assert results_width(io.StringIO(), environ={"COLUMNS": "132"}) is None

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert results_width(Terminal(), environ={}) is None
