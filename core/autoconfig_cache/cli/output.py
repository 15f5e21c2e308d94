"""Where the CLI writes: results to stdout, messages and errors to stderr.

Results meant for scripts (``--json``) are written as plain JSON, never through rich, so that no
markup or line wrapping can change them.

Values from data (environment names and keys, ids, problem details, plugin errors) reach rich
only as :class:`rich.text.Text` made by :func:`shown`: anyone who may edit an environment in
LaunchDarkly chooses its name, and a name such as ``[/]`` or ``[link=...]`` must neither crash a
command (rich's ``MarkupError``) nor render as markup; emoji codes (``:warning:``) are off too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO, cast

from ..errors import CommandFailed as CommandFailed  # defined with every other error
from ..logsetup import escape_control

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

#: The width of results written anywhere but a terminal (a pipe, a file) when ``COLUMNS`` is
#: not set: the classic terminal width, whatever terminal the command was started from.
PIPED_WIDTH = 80


def results_width(
    stdout: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> int | None:
    """The width of :data:`out`: ``None`` (rich decides) when ``COLUMNS`` is set or stdout is a
    terminal, :data:`PIPED_WIDTH` otherwise.

    Rich alone would take the width of whichever of stdin, stdout or stderr is a terminal, so
    ``cache inspect | less`` from a 200-column terminal would lay tables out for 200 columns.
    """
    stdout = sys.stdout if stdout is None else stdout
    environ = os.environ if environ is None else environ
    if environ.get("COLUMNS", "").isdigit():
        return None  # rich reads COLUMNS itself
    try:
        terminal = stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        terminal = False
    return None if terminal else PIPED_WIDTH


class _DeferredConsole:
    """A rich :class:`~rich.console.Console` made on first use, with ``options``.

    Importing rich takes a noticeable part of a second; ``autoconfig-cache run`` imports this
    module (its parser sits beside the tools') but never prints through rich, so rich is only
    imported by a command that does.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def made(self) -> Console:
        """The console itself, made now if it was not yet."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found on the wrapper itself: the console's. Special
        # methods (``with console:``) bypass it: code that needs them takes :func:`made_console`.
        return getattr(self.made(), name)


#: Results (tables, JSON) for the person or script that ran the command.
out = cast(
    "Console",
    _DeferredConsole(highlight=False, soft_wrap=False, emoji=False, width=results_width()),
)
#: Progress, warnings and errors.
err = cast("Console", _DeferredConsole(stderr=True, highlight=False, emoji=False))


def made_console(console: Console) -> Console:
    """``console`` itself where it is :data:`out` or :data:`err`: for rich code that uses it as
    a context manager (``Progress``, ``Live``), which the deferred wrapper cannot stand in for."""
    if isinstance(console, _DeferredConsole):
        return console.made()
    return console


def shown(value: object, style: str = "") -> Text:
    """``value`` as literal text for rich: never markup, control characters escaped."""
    from rich.text import Text

    return Text(escape_control(str(value)), style=style)


def lines(values: Iterable[object]) -> Text:
    """One literal line per value (as :func:`shown`), for a table cell; empty if none."""
    from rich.text import Text

    return Text("\n").join(shown(value) for value in values)


def message(*parts: str | Text | tuple[str, str]) -> Text:
    """A line from parts: a ``str`` is a value (literal text), ``(text, style)`` a styled word.

    ``message(("skipped", "yellow"), " ", field)``: no part is ever read as markup.
    """
    from rich.text import Text

    line = Text()
    for part in parts:
        if isinstance(part, tuple):
            line.append(shown(part[0], part[1]))
        elif isinstance(part, Text):
            line.append(part)
        else:
            line.append(shown(part))
    return line


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
