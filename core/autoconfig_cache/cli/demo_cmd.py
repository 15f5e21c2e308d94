"""``autoconfig-cache demo``: the outage story, end to end, on this machine only."""

from __future__ import annotations

import argparse


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register the ``demo`` command (``common``: the common options without ``--config``)."""
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="show an outage and recovery with a local stream server and an SQLite cache",
        description="Starts a local AutoConfig stream server, runs the service against it with "
        "an SQLite cache in a temporary folder, takes the stream down, starts a fresh instance "
        "from the cache, and brings the stream back with a change. Needs no network and reads "
        "no configuration (no --config, no AUTO_CONFIG_* variables): it makes its own.",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder; its demo.env file (mode 0600) holds the settings that "
        "inspect the kept cache, and the demo prints the command",
    )
    parser.set_defaults(func=run_demo, demo_parser=parser)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when every step did what it shows."""
    if getattr(args, "config", None) is not None:
        # `autoconfig-cache --config FILE demo`: the top-level parser accepts the option.
        parser: argparse.ArgumentParser = args.demo_parser
        parser.error("--config: the demo reads no configuration file; it makes its own settings")
    from ..demo import run_demo as demo

    return demo(keep=args.keep, verbose=getattr(args, "log_level", None) is not None)
