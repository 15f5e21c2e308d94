"""``autoconfig-cache run``: the long-running service."""

from __future__ import annotations

import argparse


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        parents=[common],
        help="run the service: AutoConfig stream + cache + status server on PORT",
        description="Hold the AutoConfig configuration from the cache and the stream, keep the "
        "cache up to date, and serve /status, /healthz, /readyz and /metrics on PORT.",
    )
    parser.set_defaults(func=run_service)


def run_service(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; exit 0 after a clean shutdown."""
    from ..service.runner import run_from_args

    return run_from_args(args)
