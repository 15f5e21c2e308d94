"""``autoconfig-cache run`` without a store says so at WARNING: no cache, no outage protection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import (
    AUTOCONFIG_KEY,
    ServiceProcess,
    StreamServerProcess,
    initial_data,
)

NO_CACHE = "no cache is configured"


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[StreamServerProcess]:
    server = StreamServerProcess(tmp_path, initial_data())
    yield server
    server.stop()


def _run_until_ready(tmp_path: Path, env: dict[str, str]) -> list[str]:
    """Run the service until it serves the stream's data, stop it; its log lines."""
    service = ServiceProcess(tmp_path, env)
    try:
        service.wait_listening().wait_status(lambda s: s["ready"], "ready from the stream")
    finally:
        service.stop()
    return service.log_text().splitlines()


def test_without_a_store_run_warns_that_there_is_no_cache_and_names_the_setting(
    tmp_path: Path, stream: StreamServerProcess
) -> None:
    lines = _run_until_ready(
        tmp_path, {"AUTO_CONFIG_KEY": AUTOCONFIG_KEY, "STREAM_URI": stream.uri}
    )
    warnings = [line for line in lines if NO_CACHE in line]
    assert len(warnings) == 1, lines
    (warning,) = warnings
    assert " WARNING " in warning
    assert "no outage protection" in warning
    assert "AUTO_CONFIG_CACHE_STORE" in warning and "AUTO_CONFIG_CACHE_KEY" in warning
    # Not the message of a cache that exists and is empty.
    assert not any("cache holds no AutoConfig data" in line for line in lines), lines


def test_with_a_store_there_is_no_such_warning(tmp_path: Path, stream: StreamServerProcess) -> None:
    env = {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream.uri,
        "AUTO_CONFIG_CACHE_STORE": f"sqlite://{tmp_path / 'cache.db'}",
        "AUTO_CONFIG_CACHE_KEY": "with-store",
    }
    lines = _run_until_ready(tmp_path, env)
    assert not any(NO_CACHE in line for line in lines), lines
