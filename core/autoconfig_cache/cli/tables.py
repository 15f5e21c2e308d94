"""Result tables that fit the terminal without breaking a word.

Rich, left to itself, squeezes a table that is too wide by cutting every column down evenly and
folding what no longer fits: ``envir/onmen/t`` at 80 columns. Here the widths are chosen first:
each column says how it may give up space (:class:`Fit`), the widest columns give it up first
and none goes below its floor, which is never less than its header's longest word, so that no
header and no value is ever broken inside a word. A value that still does not fit is cut at the
end with ``…`` (``--wide`` or ``--json`` shows it whole).

By default a table shows its essential columns only; ``--wide`` adds the others
(:attr:`Column.wide_only`) and prints every column at its full width, even when the lines are
then longer than the terminal (for ``less -S`` or a file).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

# rich is imported where a table is measured or printed, not with the module: the command line
# imports this module for every command, and ``run`` never prints a table.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

#: With ``--wide``, the width a wrapped column gets at least (its longest line if shorter).
WIDE_WRAP = 40


class Fit(enum.Enum):
    """How a column gives up space when the table is wider than the terminal."""

    FIXED = "fixed"
    """Never: one line at the width of its longest value (kinds, versions, statuses)."""
    ABBREVIATE = "abbreviate"
    """One line; a value longer than the column is cut at the end with ``…`` (keys, ids)."""
    WRAP = "wrap"
    """Lines break between words; a single word longer than the column is cut with ``…``."""


class Layout(enum.Enum):
    """How hard a table is squeezed."""

    WIDE = "wide"
    """``--wide``: nothing cut; the table is as wide as the terminal or as it must be."""
    NORMAL = "normal"
    """Fixed columns whole, the others down to their :attr:`Column.min_width`."""
    TIGHT = "tight"
    """A terminal too narrow for ``NORMAL``: any value may be cut; headers stay whole."""


@dataclass(frozen=True)
class ColumnValues:
    """The widths that matter about a column's values, header included."""

    longest_line: int
    longest_word: int

    @classmethod
    def of(cls, header: str, cells: Sequence[Text]) -> ColumnValues:
        """Measure ``header`` and ``cells``."""
        from rich.cells import cell_len

        lines = [header, *(line for cell in cells for line in cell.plain.split("\n"))]
        words = [word for line in lines for word in line.split()]
        return cls(
            longest_line=max(cell_len(line) for line in lines),
            longest_word=max((cell_len(word) for word in words), default=0),
        )


@dataclass(frozen=True)
class Column:
    """One column of a :class:`ResultTable`."""

    header: str
    fit: Fit = Fit.FIXED
    #: Shown only with ``--wide``.
    wide_only: bool = False
    #: The narrowest an abbreviated or wrapped column becomes (when its values are that wide).
    min_width: int = 0

    def floor(self, values: ColumnValues, layout: Layout) -> int:
        """The narrowest this column may be made in ``layout``."""
        from rich.cells import cell_len

        if self.fit is Fit.WRAP:
            header = max(cell_len(word) for word in self.header.split())
        else:
            header = cell_len(self.header)  # one line, header included
        if layout is Layout.TIGHT:
            return header
        if layout is Layout.WIDE:
            # Nothing is ever cut: whole lines, or whole words and lines of up to WIDE_WRAP
            # characters where lines may wrap (so that a long name is not a column of words).
            if self.fit is Fit.WRAP:
                return max(values.longest_word, min(values.longest_line, WIDE_WRAP))
            return values.longest_line
        if self.fit is Fit.FIXED:
            return values.longest_line
        return max(header, min(values.longest_line, self.min_width))


def fit_widths(natural: Sequence[int], floors: Sequence[int], available: int) -> list[int] | None:
    """Column widths whose sum is at most ``available``, or ``None`` if the floors do not fit.

    Columns at their natural width when they all fit; otherwise the widest ones are narrowed
    first, to a common cap, none below its floor (water-filling), and the space the cap leaves
    over goes back to the narrowed columns one character each.
    """
    floors = [min(floor, width) for floor, width in zip(floors, natural, strict=True)]
    if sum(natural) <= available:
        return list(natural)
    if sum(floors) > available:
        return None

    def capped(cap: int) -> list[int]:
        return [max(floor, min(width, cap)) for floor, width in zip(floors, natural, strict=True)]

    # capped(fits) fits (all floors), capped(too_wide) does not (the natural widths).
    fits, too_wide = 0, max(natural)
    while too_wide - fits > 1:
        middle = (fits + too_wide) // 2
        if sum(capped(middle)) <= available:
            fits = middle
        else:
            too_wide = middle
    widths = capped(fits)
    # Less than one character for each column held at the cap (one more each would not fit).
    spare = available - sum(widths)
    for index, width in enumerate(widths):
        if spare == 0:
            break
        if width == fits < natural[index]:
            widths[index] += 1
            spare -= 1
    return widths


class ResultTable:
    """A table of results: rows of literal :class:`Text`, printed to fit (see the module)."""

    def __init__(self, columns: Sequence[Column], *, wide: bool) -> None:
        self._all_columns = list(columns)
        self._shown = [
            index for index, column in enumerate(columns) if wide or not column.wide_only
        ]
        self._wide = wide
        self._rows: list[list[Text]] = []

    def add_row(self, *cells: Text) -> None:
        """Add a row: one cell per column given to the constructor, wide-only ones included."""
        if len(cells) != len(self._all_columns):
            raise ValueError(f"{len(cells)} cells for {len(self._all_columns)} columns")
        self._rows.append([cells[index] for index in self._shown])

    def print(self, console: Console) -> None:
        """Print the table on ``console``: to its width, or at full width with ``--wide``."""
        from rich.segment import Segments
        from rich.table import Table

        columns = [self._all_columns[index] for index in self._shown]
        values = [
            ColumnValues.of(column.header, [row[i] for row in self._rows])
            for i, column in enumerate(columns)
        ]
        # Rich's default table: an edge on each side, one rule between columns, one space of
        # padding on each side of every cell.
        chrome = 3 * len(columns) + 1
        widths = self._widths(columns, values, console.width - chrome)
        table_width = sum(widths) + chrome if widths is not None else console.width
        table = Table()
        for index, column in enumerate(columns):
            table.add_column(
                column.header,
                # None only when the terminal is too narrow for even the floors: rich squeezes.
                width=widths[index] if widths is not None else None,
                no_wrap=column.fit is not Fit.WRAP,
                overflow="ellipsis",
            )
        for row in self._rows:
            table.add_row(*row)
        if table_width > console.width:  # --wide only
            # Console.print never renders wider than the console: render at the table's own
            # width and print the lines as they are, uncropped.
            options = console.options.update_width(table_width)
            console.print(Segments(console.render(table, options)), crop=False)
        else:
            console.print(table)

    def _widths(
        self, columns: Sequence[Column], values: Sequence[ColumnValues], available: int
    ) -> list[int] | None:
        """The widths of ``columns`` (padding excluded) for ``available`` characters; ``None``
        when the terminal is too narrow even for the headers (rich then squeezes the table)."""
        natural = [value.longest_line for value in values]
        if self._wide:
            floors = [
                column.floor(value, Layout.WIDE)
                for column, value in zip(columns, values, strict=True)
            ]
            return fit_widths(natural, floors, max(available, sum(floors)))
        for layout in (Layout.NORMAL, Layout.TIGHT):
            floors = [
                column.floor(value, layout) for column, value in zip(columns, values, strict=True)
            ]
            widths = fit_widths(natural, floors, available)
            if widths is not None:
                return widths
        return None
