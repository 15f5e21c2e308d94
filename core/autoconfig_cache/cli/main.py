"""Argument parsing and error handling shared by every command (configuration and logging set-up:
``common.py``)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Sequence

from ..errors import AutoConfigCacheError
from ..logsetup import escape_control
from ..project import DOCUMENTATION_URL, docs_page, installed_version
from . import cache_cmds, demo_cmd, plugins_cmd, run_cmd
from .common import NothingThereError
from .common import load_config as load_config  # where 0.1 had them
from .common import setup_logging as setup_logging
from .output import CommandFailed

PROG = "autoconfig-cache"


def _version() -> str:
    return installed_version() or "unknown"  # None: running from a source tree


def common_options(*, config: bool = True) -> argparse.ArgumentParser:
    """Options every command accepts, before or after its name.

    ``default=SUPPRESS`` so that a subcommand that does not repeat an option leaves the value
    given before the subcommand name in place.

    :param config: include ``--config``; ``False`` for a command that reads no configuration
        (``demo``), which then refuses the option instead of ignoring it.
    """
    parent = argparse.ArgumentParser(add_help=False)
    if config:
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


class _LineFormatter(argparse.HelpFormatter):
    """Wraps each line of the description and epilog on its own (the default formatter joins
    them into one paragraph) and never inside a word or at a hyphen, so that a URL stays whole
    and can be copied."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            textwrap.fill(
                " ".join(line.split()),
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
            for line in text.splitlines()
        )


_SubParsers = argparse._SubParsersAction  # what add_subparsers returns

#: Each command, with what adds its parser (given the common options), in ``--help``'s order.
_COMMAND_PARSERS: dict[
    str, Callable[[_SubParsers[argparse.ArgumentParser], argparse.ArgumentParser], None]
] = {
    "run": run_cmd.add_parser,
    "demo": lambda subparsers, _: demo_cmd.add_parser(subparsers, common_options(config=False)),
    "cache": cache_cmds.add_parser,
    "plugins": lambda subparsers, _: plugins_cmd.add_parser(subparsers),
}

#: The options of :func:`common_options` that take a value (see :func:`named_command`; one
#: missing here only sends its command lines to the complete parser).
_VALUED_OPTIONS = ("--config", "--log-level")
_VALUED_PREFIXES = tuple(f"{option}=" for option in _VALUED_OPTIONS)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``autoconfig-cache`` parser.

    :param command: build only this command's parser beside the common options: it parses a
        command line that names ``command`` (see :func:`named_command`) exactly as the complete
        parser does, and a start of ``run`` does not build the parsers of every other command
        and ``cache`` tool (a fifth of the time to read the configuration). ``None``: every
        command (``--help``, ``--version``, a mistyped command: the complete parser answers).
    """
    common = common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="A persistent, encrypted, shared cache of LaunchDarkly Relay Proxy "
        "AutoConfig data. Settings come from environment variables (Relay Proxy names) and "
        "--config FILE.",
        # A URL, not docs/...: a pip install has no docs folder.
        epilog=f"Start with: autoconfig-cache demo\n"
        f"Settings: {docs_page('configuration.md')}\n"
        f"Documentation: {DOCUMENTATION_URL}",
        formatter_class=_LineFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, add_parser in _COMMAND_PARSERS.items():
        if command is None or name == command:
            add_parser(subparsers, common)
    return parser


def named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, when nothing but ``--config`` and ``--log-level`` (each with
    its value) comes before its name; ``None`` for any other command line, which the complete
    parser reads (help, version, an abbreviated option, a mistyped command: its messages list
    every command)."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in _COMMAND_PARSERS:
            return token
        if token in _VALUED_OPTIONS:
            index += 2  # the value may look like a command name: it is the option's
        elif token.startswith(_VALUED_PREFIXES):
            index += 1
        else:
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 success; 1 a failure explained in one line on stderr (bad configuration, store error,
    problems found by ``verify``); 2 a usage error (unknown flag, missing argument); 3 a
    read-only tool found nothing where it looked (``common.EXIT_NOTHING_THERE``).
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(named_command(arguments))
    args = parser.parse_args(arguments)
    level = getattr(args, "log_level", None)
    if args.command != "run":  # run sets up its own logging once its configuration is read
        setup_logging(level or "WARNING", plain=False)
    try:
        status: int = args.func(args)
        return status
    except (AutoConfigCacheError, CommandFailed) as exc:
        _fail(str(exc))
        if isinstance(exc, NothingThereError):
            return exc.exit_status
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into `head`): not an error of ours.
        return 0
    return 1


def _fail(message: str) -> None:
    # Plain text, one line: an error may quote data (ids, names) with newlines or ESC in them.
    sys.stderr.write(f"{PROG}: error: {escape_control(message)}\n")
    sys.stderr.flush()
