"""``python -m autoconfig_cache.cli``: the same as the ``autoconfig-cache`` command."""

from __future__ import annotations

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
