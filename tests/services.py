"""Helpers for tests that need a real server (redis-server, moto_server, ...).

Skip-or-fail comes from the conformance kit (:mod:`autoconfig_cache.testing.services`), which
third-party store authors use too: a missing server skips on a developer's machine and fails
when ``AUTOCONFIG_CACHE_REQUIRE_SERVICES=1``, as CI sets.
"""

from __future__ import annotations

import importlib
import socket
from types import ModuleType

import pytest

from autoconfig_cache.testing.services import (
    require_executable,
    service_missing,
    services_required,
)

__all__ = [
    "free_port",
    "require_executable",
    "require_plugin",
    "service_missing",
    "services_required",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_plugin(module: str) -> ModuleType:
    """Import a store plugin, or skip (developer machine) / fail (CI) when it is not installed.

    Usable at module level, unlike :func:`service_missing`.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"plugin {module} is not installed ({exc})"
        if services_required():
            pytest.fail(f"required plugin missing: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
