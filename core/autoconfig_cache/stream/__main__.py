"""``python -m autoconfig_cache.stream``: run the local AutoConfig stream server (development)."""

from __future__ import annotations

import sys

from .server import main

sys.exit(main())
