"""What the commands share: the configuration they read and the logging they set up.

Apart from ``main.py`` so that the commands need not import the module that imports them.
"""

from __future__ import annotations

import argparse
import logging

from .. import __name__ as _package
from ..config import Config
from ..logsetup import setup_logging as _setup_logging
from .output import err


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
    _setup_logging(level, plain=plain, console=err)
