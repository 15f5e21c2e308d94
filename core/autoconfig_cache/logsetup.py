"""Logging set-up for the service and the tools: where log lines go and which loggers are quiet.

A library module (the service calls it, the command line re-exports it), so that the service
never imports the command line (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING

from .plugins import get_registry

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["EscapingFormatter", "escape_control", "setup_logging"]

# Every C0 and C1 control character but TAB, DEL included, and the Unicode line separators (NEL
# is C1): each of them can end a line, or drive the cursor, in a log file or a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": r"\n", "\r": r"\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_control(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``, ...).

    For values from data (environment names and keys, ids) in log lines and on the terminal: a
    newline in an ``envKey`` must not start a forged log line, an ESC must not drive the terminal.
    """
    return _CONTROL.sub(_escaped, text)


class EscapingFormatter(logging.Formatter):
    """A formatter that escapes control characters in the message (not in the traceback).

    Applied to every log line, whatever the call site did with the values from data; the
    traceback that follows an ``exception()`` message keeps its own lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The formatted line, its message's control characters escaped."""
        original = record.message
        record.message = escape_control(original)
        try:
            return super().formatMessage(record)
        finally:
            record.message = original


def setup_logging(level: str, *, plain: bool, console: Console | None = None) -> None:
    """Log to stderr: plain lines for the service (log collectors), rich for the tools.

    Replaces the root logger's handlers, so calling it again (once the configuration names a
    level) changes the level without doubling every line.

    :param level: a logging level name (``"info"``, ``"WARNING"``, ...).
    :param plain: one ``time level logger: message`` line per record, for the service.
    :param console: the rich console the tools log to (default: a new one on stderr); ignored
        when ``plain``.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if plain:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(
            console=console or Console(stderr=True, highlight=False),
            show_path=False,
            show_time=False,
        )
        handler.setFormatter(EscapingFormatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log would print a line per probe request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Libraries of store plugins that log routine things at INFO (the plugins name them).
    for name in get_registry().noisy_loggers():
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
