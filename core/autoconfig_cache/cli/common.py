"""What the commands share: the configuration they read, the logging they set up and their exit
statuses.

Apart from ``main.py`` so that the commands need not import the module that imports them.
"""

from __future__ import annotations

import argparse
import logging

from .. import __name__ as _package
from ..config import Config
from ..logsetup import setup_logging as _setup_logging
from .output import CommandFailed, err, made_console

#: Exit statuses of every command (docs/operations.md, "Exit statuses").
EXIT_OK = 0
#: A failure explained on stderr (configuration, store error), or damaged items (``verify``).
EXIT_FAILED = 1
#: argparse's own status for a usage error (unknown option, missing argument).
EXIT_USAGE = 2
#: A read-only tool found nothing where it looked (no database, table or records under the
#: cache key): most often a mistyped store URL or cache key. ``--allow-empty`` accepts it.
EXIT_NOTHING_THERE = 3


class NothingThereError(CommandFailed):
    """Ends a read-only tool that found nothing to read, with :data:`EXIT_NOTHING_THERE`."""

    exit_status = EXIT_NOTHING_THERE


def load_config(args: argparse.Namespace) -> Config:
    """The configuration from ``--config`` and the environment, warnings logged."""
    config = Config.load(config_file=getattr(args, "config", None))
    for warning in config.warnings:
        logging.getLogger(_package).warning("configuration: %s", warning)
    return config


def setup_logging(level: str, *, plain: bool) -> None:
    """Log to stderr: plain lines for the service, rich ones on the tools' error console.

    The work is done by the library's :func:`autoconfig_cache.logsetup.setup_logging` (the
    service calls it without the command line).
    """
    # The service's plain lines need no console: rich stays unimported on its start path.
    _setup_logging(level, plain=plain, console=None if plain else made_console(err))
