"""Write the generated tables of the documentation, or check that they are current.

Each table sits between two markers in a Markdown file::

    <!-- options:redis -->
    | Option | Type | Default | Meaning |
    ...
    <!-- /options:redis -->

and is rendered from the code: store options by ``autoconfig_cache.options.options_table`` from
an options class, Relay-style settings by ``autoconfig_cache.environment.settings_table`` from a
plugin's :class:`~autoconfig_cache.environment.EnvironmentStore`. This script lives outside the
packages so that the core never imports a plugin.

Usage (from the repository root)::

    .venv/bin/python tools/option_docs.py --write   # rewrite the tables
    .venv/bin/python tools/option_docs.py --check   # exit 1 if a table is stale
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _options(path: str) -> Callable[[], str]:
    def render() -> str:
        from autoconfig_cache.options import options_table

        module, _, name = path.partition(":")
        return options_table(getattr(importlib.import_module(module), name))

    return render


def _settings(path: str) -> Callable[[], str]:
    def render() -> str:
        from autoconfig_cache.environment import settings_table

        module, _, name = path.partition(":")
        return settings_table(getattr(importlib.import_module(module), name)())

    return render


#: marker name -> (file, renderer)
TABLES: dict[str, tuple[str, Callable[[], str]]] = {
    "options:redis": (
        "docs/stores/redis.md",
        _options("autoconfig_cache_redis.settings:RedisOptions"),
    ),
    "options:dynamodb": (
        "docs/stores/dynamodb.md",
        _options("autoconfig_cache_dynamodb.settings:DynamoDBOptions"),
    ),
    "options:sqlite": (
        "docs/configuration.md",
        _options("autoconfig_cache.stores.sqlite:SQLiteOptions"),
    ),
    "settings:redis": (
        "docs/configuration.md",
        _settings("autoconfig_cache_redis.plugin:environment_store"),
    ),
    "settings:dynamodb": (
        "docs/configuration.md",
        _settings("autoconfig_cache_dynamodb.plugin:environment_store"),
    ),
}


def render_file(text: str, tables: dict[str, str]) -> str:
    """``text`` with the table between each pair of markers replaced by ``tables[marker]``.

    :raises ValueError: when a marker of ``tables`` is missing or unpaired.
    """
    for marker, table in tables.items():
        pattern = re.compile(
            rf"(<!-- {re.escape(marker)} -->\n).*?(<!-- /{re.escape(marker)} -->)", re.DOTALL
        )
        text, count = pattern.subn(lambda match, table=table: match[1] + table + match[2], text)
        if count != 1:
            raise ValueError(f"expected one pair of <!-- {marker} --> markers, found {count}")
    return text


def stale_files(*, write: bool) -> list[str]:
    """The files whose tables differ from the code (rewritten when ``write``)."""
    by_file: dict[str, dict[str, str]] = {}
    for marker, (file, render) in TABLES.items():
        by_file.setdefault(file, {})[marker] = render()
    stale = []
    for file, tables in by_file.items():
        path = ROOT / file
        text = path.read_text(encoding="utf-8")
        current = render_file(text, tables)
        if current != text:
            stale.append(file)
            if write:
                path.write_text(current, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="rewrite stale tables")
    group.add_argument("--check", action="store_true", help="exit 1 when a table is stale")
    args = parser.parse_args(argv)
    stale = stale_files(write=args.write)
    for file in stale:
        print(f"{file}: {'rewritten' if args.write else 'stale; run tools/option_docs.py --write'}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
