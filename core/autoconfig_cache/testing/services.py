"""Skip-or-fail for store tests that need a server.

On a developer's machine a test whose server (redis-server, a DynamoDB endpoint, ...) is missing
is skipped. With ``AUTOCONFIG_CACHE_REQUIRE_SERVICES=1``, as CI sets, it fails instead, so a
missing server can never pass unnoticed as a skipped test.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

REQUIRE_SERVICES_VARIABLE = "AUTOCONFIG_CACHE_REQUIRE_SERVICES"


def services_required() -> bool:
    """True when a missing server must fail the test run (``AUTOCONFIG_CACHE_REQUIRE_SERVICES``)."""
    return os.environ.get(REQUIRE_SERVICES_VARIABLE, "").strip().lower() not in ("", "0", "false")


def service_missing(reason: str) -> NoReturn:
    """Skip the test (developer machine) or fail it (CI) because a server is missing."""
    if services_required():
        pytest.fail(f"required service missing: {reason} ({REQUIRE_SERVICES_VARIABLE}=1)")
    pytest.skip(reason)


def require_executable(name: str) -> str:
    """The path of executable ``name``, or skip/fail as :func:`service_missing` does."""
    path = shutil.which(name)
    if path is None:
        service_missing(f"{name} is not installed")
    return path
