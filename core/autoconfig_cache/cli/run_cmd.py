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
    """Run until SIGTERM or SIGINT; exit 0 after a clean shutdown.

    Logging is set up twice: first at INFO (or ``--log-level``) so that configuration warnings
    are seen, then at the level the configuration names.
    """
    import asyncio

    from ..service.runner import serve
    from .common import load_config, setup_logging

    setup_logging(getattr(args, "log_level", None) or "INFO", plain=True)
    config = load_config(args)
    setup_logging(getattr(args, "log_level", None) or config.log_level, plain=True)
    config.require_autoconfig_key()
    return asyncio.run(serve(config))
