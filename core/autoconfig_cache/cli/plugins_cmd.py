"""``autoconfig-cache plugins``: what is installed, which schemes, which hooks, what failed.

The table shows each store scheme with the ``description=`` it was registered with, and each
sink type (docs/sinks.md); ``--wide`` adds the hooks beyond store and sink registration (those
columns already show them) and the sink types' descriptions; ``--json`` has them all.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..plugins import PluginInfo, get_registry
from .output import lines, message, out, print_json, shown

if TYPE_CHECKING:
    from .tables import Column


def _columns() -> tuple[Column, ...]:
    """The plugin table's columns (docs/operations.md, "Output of the cache tools"); built when
    the table is, as the parser of every command imports this module."""
    from .tables import Column, Fit

    return (
        Column("name", Fit.ABBREVIATE, min_width=12),
        Column("version", Fit.ABBREVIATE, min_width=10),
        Column("schemes", Fit.WRAP, min_width=24),
        Column("sink types", Fit.WRAP, min_width=11),
        Column("other hooks", Fit.WRAP, wide_only=True),
        Column("error", Fit.WRAP, min_width=20),
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``plugins`` command."""
    parser = subparsers.add_parser(
        "plugins",
        help="list installed plugins: name, version, store schemes, sink types, other hooks, "
        "load errors",
        description="List the installed plugins (built-in stores included) and any that "
        "failed to load.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument(
        "--wide",
        action="store_true",
        help="add the other hooks each plugin implements, every column at full width; by "
        "default the table fits the terminal (80 columns when not a terminal, unless COLUMNS "
        "is set)",
    )
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
                "sinkTypes": sorted(registry.sink_types),
                "registrationErrors": list(registry.registration_errors),
            }
        )
        return 0
    from .tables import ResultTable

    table = ResultTable(_columns(), wide=args.wide)
    for info in infos:  # sorted by name
        table.add_row(
            # Literal text: names, versions and errors come from installed packages.
            shown(info.name),
            shown(info.version or "-"),
            lines(_scheme_families(info)) or shown("-"),
            lines(_sink_types(info, wide=args.wide)) or shown("-"),
            # One per line: hook names are long words that must not be cut.
            lines(info.other_hooks) or shown("-"),
            shown(info.error or "", "red"),
        )
    out.print(shown("autoconfig-cache plugins"))
    table.print(out)
    for problem in registry.registration_errors:
        out.print(message(("warning:", "yellow"), f" {problem}"))
    return 0


def _scheme_families(info: PluginInfo) -> list[str]:
    """Schemes grouped by description, one family a line: ``redis, rediss: ...``."""
    families: dict[str, list[str]] = {}
    for scheme in info.schemes:
        families.setdefault(info.descriptions.get(scheme, ""), []).append(scheme)
    return [
        f"{', '.join(schemes)}: {description}" if description else ", ".join(schemes)
        for description, schemes in families.items()
    ]


def _sink_types(info: PluginInfo, *, wide: bool) -> list[str]:
    """The plugin's sink types, one a line; with their descriptions when ``wide``."""
    if not wide:
        return list(info.sink_types)
    return [
        f"{scheme}: {info.sink_descriptions[scheme]}"
        if info.sink_descriptions.get(scheme)
        else scheme
        for scheme in info.sink_types
    ]
