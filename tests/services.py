"""Helpers for tests that need a real server (redis-server, moto_server, ...).

Skip-or-fail comes from the conformance kit (:mod:`autoconfig_cache.testing.services`), which
third-party store authors use too: a missing server skips on a developer's machine and fails
when ``AUTOCONFIG_CACHE_REQUIRE_SERVICES=1``, as CI sets.
"""

from __future__ import annotations

import socket

from autoconfig_cache.testing.services import (
    require_executable,
    service_missing,
    services_required,
)

__all__ = ["free_port", "require_executable", "service_missing", "services_required"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
