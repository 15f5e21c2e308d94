"""Generated AutoConfig data for the demo and for tests (realistic shapes, fake keys).

It lives in :mod:`autoconfig_cache.stream.sample`, below the demo, so that the local stream
server can serve it too (``--sample N``); these names stay importable from here.
"""

from __future__ import annotations

from ..stream.sample import ROTATED_KEY_EXPIRY_MS, environment_json, sample_put_data, sdk_key_for

__all__ = ["ROTATED_KEY_EXPIRY_MS", "environment_json", "sample_put_data", "sdk_key_for"]
