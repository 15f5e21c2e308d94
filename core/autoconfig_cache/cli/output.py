"""Where the CLI writes: results to stdout, messages and errors to stderr.

Results meant for scripts (``--json``) are written as plain JSON, never through rich, so that no
markup or line wrapping can change them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from ..errors import CommandFailed as CommandFailed  # defined with every other error

#: Results (tables, JSON) for the person or script that ran the command.
out = Console(highlight=False, soft_wrap=False)
#: Progress, warnings and errors.
err = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
