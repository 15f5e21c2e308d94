"""Wiring of ``autoconfig-cache run`` (being written)."""

from __future__ import annotations

import argparse


def run_from_args(args: argparse.Namespace) -> int:
    """Run the service (being written)."""
    from ..cli.output import CommandFailed

    raise CommandFailed("run is not available yet")
