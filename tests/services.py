"""Helpers for tests that need a real server (redis-server, moto_server, ...).

A test whose server is missing on a developer's machine is skipped; when
``AUTOCONFIG_CACHE_REQUIRE_SERVICES=1`` (as CI sets) it fails instead, so a missing server can
never pass as a skipped test.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest


def services_required() -> bool:
    """True when a missing server must fail the test run (CI)."""
    return os.environ.get("AUTOCONFIG_CACHE_REQUIRE_SERVICES", "") not in ("", "0", "false")


def service_missing(reason: str) -> NoReturn:
    """Skip (developer machine) or fail (CI) because a server the test needs is missing."""
    if services_required():
        pytest.fail(f"required service missing: {reason} (AUTOCONFIG_CACHE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def require_executable(name: str) -> str:
    """The path of executable ``name``, or skip/fail as :func:`service_missing` does."""
    path = shutil.which(name)
    if path is None:
        service_missing(f"{name} is not installed")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
