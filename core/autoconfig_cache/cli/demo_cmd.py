"""``autoconfig-cache demo``: the outage story, end to end, on this machine only."""

from __future__ import annotations

import argparse


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="show an outage and recovery with a local stream server and an SQLite cache",
        description="Starts a local AutoConfig stream server, runs the service against it with "
        "an SQLite cache in a temporary folder, takes the stream down, starts a fresh instance "
        "from the cache, and brings the stream back with a change. Needs no network.",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder and print its path"
    )
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when every step did what it shows."""
    from ..demo import run_demo as demo

    return demo(keep=args.keep, verbose=getattr(args, "log_level", None) is not None)
