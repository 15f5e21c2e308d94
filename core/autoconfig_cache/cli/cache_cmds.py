"""``autoconfig-cache cache ...``: operator tools on the cache that ``run`` uses.

The store, cache key, keys and format come from the same configuration as ``run`` (environment
variables and ``--config``), so the tools always look at what the service reads and writes.

Key rotation, masked export and import validation are library API
(:mod:`autoconfig_cache.maintenance`, :meth:`AutoConfigCache.rotate_keys`,
``Snapshot.to_put_data(masked=True)``); this module reads the arguments and files, shows progress
and prints the results (docs/operations.md has the rotation procedure). This module holds the
parser; the tools themselves are in ``cache_tools.py``, imported only when one runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .common import EXIT_FAILED, EXIT_NOTHING_THERE, EXIT_OK, EXIT_USAGE


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    """The tool ``name`` of ``cache_tools``, imported when the tool runs: the parser is built
    for every command, ``run`` included, which needs none of the tools' code."""

    def run(args: argparse.Namespace) -> int:
        from . import cache_tools

        status: int = getattr(cache_tools, name)(args)
        return status

    run.__name__ = name
    return run


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register ``cache`` and its subcommands."""
    cache = subparsers.add_parser(
        "cache",
        parents=[common],
        help="inspect, verify, export, import, rotate-key, clear, create-table",
        description="Tools on the configured cache (same settings as `run`).",
    )
    tools = cache.add_subparsers(dest="cache_command", metavar="TOOL", required=True)

    def tool(name: str, func: Callable[[argparse.Namespace], int], help: str) -> Any:
        parser = tools.add_parser(name, parents=[common], help=help, description=help)
        parser.set_defaults(func=func)
        return parser

    inspect = tool("inspect", _handler("run_inspect"), "show what is cached; secrets masked")
    inspect.add_argument("--json", action="store_true", help="print JSON for scripts")
    _add_wide_option(
        inspect, "names, model version, key id, key derivation (relay), cached at, SDK key"
    )
    _read_only_tool(inspect)

    verify = tool(
        "verify",
        _handler("run_verify"),
        "decrypt every item; report undecryptable, tampered, malformed or unknown-version items, "
        "foreign data and invalid stored versions (exit 1 if any)",
    )
    verify.add_argument("--json", action="store_true", help="print JSON for scripts")
    _add_wide_option(verify, "stored version, key id, cached at")
    _read_only_tool(verify, failed="an item is damaged or the store failed")

    export = tool(
        "export",
        _handler("run_export"),
        'write the cached data as AutoConfig put data {"environments":{...},"filters":{...}}',
    )
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (mode 0600) instead of stdout"
    )
    export.add_argument(
        "--include-secrets",
        action="store_true",
        help="keep SDK and mobile keys in clear (needed for a file you mean to import)",
    )
    export.add_argument(
        "--json",
        action="store_true",
        help="with -o FILE, print a JSON summary of what was written (without -o, the put data "
        "on stdout is JSON already)",
    )
    _read_only_tool(export)

    import_ = tool(
        "import",
        _handler("run_import"),
        "write items from an export file (version-guarded upserts)",
    )
    import_.description = (
        "Write items from an export file (version-guarded upserts: an item the store holds at "
        "the same or a newer version is skipped). The whole file is checked first. If any item "
        "is invalid (a missing or mistyped field, an id or a version no store can hold, a lone "
        "surrogate), nothing is written and the problems are named (exit 1); with "
        "--skip-invalid the valid items are written and every invalid one is listed (still "
        "exit 1). A file that is not JSON, nests deeper than 1024 levels, holds a number over "
        "4300 digits or holds masked keys is refused as a whole."
    )
    import_.add_argument("file", metavar="FILE", help="JSON put data, as written by export")
    import_.add_argument("--json", action="store_true", help="print JSON for scripts")
    import_.add_argument(
        "--skip-invalid",
        action="store_true",
        help="write the valid items and list the invalid ones instead of refusing the file; "
        "exits 1 when any item was left out",
    )

    rotate = tool(
        "rotate-key",
        _handler("run_rotate_key"),
        "re-encrypt every item under the current encryption key",
    )
    rotate.add_argument(
        "--drop-undecryptable",
        action="store_true",
        help="delete items no configured key decrypts (otherwise nothing is changed)",
    )
    rotate.add_argument("--json", action="store_true", help="print JSON for scripts")

    clear = tool("clear", _handler("run_clear"), "delete every item under the cache key")
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    clear.add_argument("--json", action="store_true", help="print JSON for scripts")

    create_table = tool(
        "create-table",
        _handler("run_create_table"),
        "create the store's table, where the store has one",
    )
    create_table.add_argument("--json", action="store_true", help="print JSON for scripts")


def _add_wide_option(parser: argparse.ArgumentParser, extra_columns: str) -> None:
    parser.add_argument(
        "--wide",
        action="store_true",
        help=f"show every column ({extra_columns}) at full width, even if the lines are then "
        "longer than the terminal; by default the table fits the terminal (80 columns when "
        "not a terminal, unless COLUMNS is set)",
    )


def _read_only_tool(
    parser: argparse.ArgumentParser, *, failed: str = "the store or the output failed"
) -> None:
    """``--allow-empty`` and the exit statuses of a tool that only reads (and creates nothing)."""
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 when there is nothing to read (no database, no table, no record under the "
        "cache key) instead of 3",
    )
    parser.epilog = (
        f"Creates nothing (no file, directory or table). Exit status: {EXIT_OK} done; "
        f"{EXIT_FAILED} {failed}; {EXIT_USAGE} usage error; {EXIT_NOTHING_THERE} nothing there: "
        "no database, table or record under the cache key (a mistyped store URL or cache key?), "
        "unless --allow-empty."
    )
