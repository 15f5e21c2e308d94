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
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from ..errors import CommandFailed as CommandFailed  # defined with every other error
from ..logsetup import escape_control

#: Results (tables, JSON) for the person or script that ran the command.
out = Console(highlight=False, soft_wrap=False, emoji=False)
#: Progress, warnings and errors.
err = Console(stderr=True, highlight=False, emoji=False)


def shown(value: object, style: str = "") -> Text:
    """``value`` as literal text for rich: never markup, control characters escaped."""
    return Text(escape_control(str(value)), style=style)


def message(*parts: str | Text | tuple[str, str]) -> Text:
    """A line from parts: a ``str`` is a value (literal text), ``(text, style)`` a styled word.

    ``message(("skipped", "yellow"), " ", field)``: no part is ever read as markup.
    """
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
