"""``autoconfig-cache plugins``: what is installed, which schemes, which hooks, what failed.

The table shows each scheme with the ``description=`` it was registered with, and only the
hooks beyond store registration (the schemes already show that one); ``--json`` has them all.
"""

from __future__ import annotations

import argparse

from rich.table import Table

from ..plugins import PluginInfo, get_registry
from .output import message, out, print_json, shown


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``plugins`` command."""
    parser = subparsers.add_parser(
        "plugins",
        help="list installed plugins: name, version, store schemes, other hooks, load errors",
        description="List the installed plugins (built-in stores included) and any that "
        "failed to load.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(func=run_plugins)


def run_plugins(args: argparse.Namespace) -> int:
    """Print the plugin list; exit 0 even when a plugin failed (it is listed with its error)."""
    registry = get_registry()
    infos = registry.plugin_infos()
    if args.json:
        print_json(
            {
                "plugins": [info.to_json() for info in infos],
                "schemes": sorted(registry.stores),
                "registrationErrors": list(registry.registration_errors),
            }
        )
        return 0
    table = Table(title="autoconfig-cache plugins")
    for column in ("name", "version", "schemes", "other hooks", "error"):
        table.add_column(column, overflow="fold")
    for info in infos:
        schemes = _schemes_cell(info)
        table.add_row(
            # Literal text: names, versions and errors come from installed packages.
            shown(info.name),
            shown(info.version or "-"),
            shown(schemes or "-"),
            shown(", ".join(info.other_hooks) or "-"),
            shown(info.error, "red") if info.error else "",
        )
    out.print(table)
    for problem in registry.registration_errors:
        out.print(message(("warning:", "yellow"), f" {problem}"))
    return 0


def _schemes_cell(info: PluginInfo) -> str:
    """Schemes grouped by description (one family per line: ``redis, rediss: ...``)."""
    families: dict[str, list[str]] = {}
    for scheme in info.schemes:
        families.setdefault(info.descriptions.get(scheme, ""), []).append(scheme)
    return "\n".join(
        f"{', '.join(schemes)}: {description}" if description else ", ".join(schemes)
        for description, schemes in families.items()
    )
