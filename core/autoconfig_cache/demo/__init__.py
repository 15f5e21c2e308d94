"""``autoconfig-cache demo``: an outage and a recovery, end to end, on this machine only."""

from __future__ import annotations

from .data import environment_json, sample_put_data

__all__ = ["environment_json", "run_demo", "sample_put_data"]


def run_demo(*, keep: bool = False) -> int:
    """Run the demo (being written)."""
    from ..cli.output import CommandFailed

    raise CommandFailed("the demo is not available yet")
