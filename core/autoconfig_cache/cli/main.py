"""Argument parsing, logging set-up and error handling shared by every command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __name__ as _package
from ..config import Config
from ..errors import AutoConfigCacheError
from . import cache_cmds, demo_cmd, plugins_cmd, run_cmd
from .output import CommandFailed

PROG = "autoconfig-cache"


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("autoconfig-cache")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


def common_options() -> argparse.ArgumentParser:
    """Options every command accepts, before or after its name.

    ``default=SUPPRESS`` so that a subcommand that does not repeat an option leaves the value
    given before the subcommand name in place.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML configuration file; environment variables override it",
    )
    parent.add_argument(
        "--log-level",
        metavar="LEVEL",
        default=argparse.SUPPRESS,
        choices=["debug", "info", "warning", "error", "DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: AUTO_CONFIG_CACHE_LOG_LEVEL for run, warning otherwise)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The complete ``autoconfig-cache`` parser."""
    common = common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="A persistent, encrypted, shared cache of LaunchDarkly Relay Proxy "
        "AutoConfig data. Settings come from environment variables (Relay Proxy names) and "
        "--config FILE; see docs/configuration.md.",
        epilog="Start with: autoconfig-cache demo",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_cmd.add_parser(subparsers, common)
    demo_cmd.add_parser(subparsers, common)
    cache_cmds.add_parser(subparsers, common)
    plugins_cmd.add_parser(subparsers)
    return parser


def load_config(args: argparse.Namespace) -> Config:
    """The configuration from ``--config`` and the environment, warnings logged."""
    config = Config.load(config_file=getattr(args, "config", None))
    for warning in config.warnings:
        logging.getLogger(_package).warning("configuration: %s", warning)
    return config


def setup_logging(level: str, *, plain: bool) -> None:
    """Log to stderr: plain lines for the service (log collectors), rich for the tools."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if plain:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        from rich.logging import RichHandler

        from .output import err

        handler = RichHandler(console=err, show_path=False, show_time=False)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log would print a line per probe request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # pynamodb logs its settings file look-up at INFO on import, which says nothing useful.
    logging.getLogger("pynamodb").setLevel(max(logging.WARNING, root.level))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 success; 1 a failure explained in one line on stderr (bad configuration, store error,
    problems found by ``verify``); 2 a usage error (unknown flag, missing argument).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(args, "log_level", None)
    if args.command != "run":  # run sets up its own logging once its configuration is read
        setup_logging(level or "WARNING", plain=False)
    try:
        status: int = args.func(args)
        return status
    except (AutoConfigCacheError, CommandFailed) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into `head`): not an error of ours.
        return 0
    return 1


def _fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
