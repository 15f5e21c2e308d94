"""The ``autoconfig-cache`` command line: ``run``, ``demo``, ``plugins`` and the ``cache`` tools.

The console script ``autoconfig-cache`` calls :func:`main`; ``python -m autoconfig_cache.cli``
does the same.
"""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
