"""Logging set-up for the service and the tools: where log lines go and which loggers are quiet.

A library module (the service calls it, the command line re-exports it), so that the service
never imports the command line (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from .plugins import get_registry

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["setup_logging"]


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
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(
            console=console or Console(stderr=True, highlight=False),
            show_path=False,
            show_time=False,
        )
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log would print a line per probe request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Libraries of store plugins that log routine things at INFO (the plugins name them).
    for name in get_registry().noisy_loggers():
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
