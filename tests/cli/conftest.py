"""Helpers for driving the real ``autoconfig-cache`` command line in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache import AutoConfigCache, Snapshot
from autoconfig_cache.config import known_settings
from autoconfig_cache.logsetup import setup_logging
from autoconfig_cache.plugins import get_registry
from tests.secret_scan import SESSION_SCAN
from tests.secret_values import known_secret

CLI = [sys.executable, "-m", "autoconfig_cache.cli"]
#: A key-shaped secret that must never appear in clear in any output.
KNOWN_SDK_KEY = known_secret("sdk-7f3e9a2b-1c4d-4e5f-8a9b-0c1d2e3f4a5b")


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any setting of ours, plus ``extra``."""
    names = {setting.env for setting in known_settings()}  # plugins' settings too
    env = {
        k: v for k, v in os.environ.items() if k not in names and not k.startswith("AUTO_CONFIG")
    }
    env["COLUMNS"] = "200"  # wide tables: assertions look for whole values
    env.update(extra or {})
    return env


def run_cli(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    input: str | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``autoconfig-cache ARGS`` and return the finished process (never raises on exit).

    :param cwd: its working directory (relative store paths), else the test process's.

    Its output goes to the session's secret scan (tests/conftest.py)."""
    result = subprocess.run(
        [*CLI, *args],
        env=clean_environ(env),
        cwd=cwd,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    command = " ".join(["autoconfig-cache", *args])
    SESSION_SCAN.scan_output(f"stdout of {command}", result.stdout)
    SESSION_SCAN.scan_output(f"stderr of {command}", result.stderr)
    return result


def seed(
    store_url: str,
    data: Mapping[str, Any],
    *,
    encryption_key: str,
    cache_key: str = "test",
    format: str = "v2",
) -> None:
    """Write put data into a store through the library (not the CLI under test)."""
    snapshot, problems = Snapshot.from_put_data(dict(data))
    assert not problems

    async def write() -> None:
        async with AutoConfigCache.open(
            store_url, cache_key=cache_key, encryption_key=encryption_key, format=format
        ) as cache:
            await cache.set_all(snapshot)

    asyncio.run(write())


def load(
    store_url: str,
    *,
    encryption_key: str,
    cache_key: str = "test",
    previous: Sequence[str] = (),
) -> Any:
    """Read a store through the library; returns the LoadResult."""

    async def read() -> Any:
        async with AutoConfigCache.open(
            store_url,
            cache_key=cache_key,
            encryption_key=encryption_key,
            previous_encryption_keys=previous,
        ) as cache:
            return await cache.get_all()

    return asyncio.run(read())


@pytest.fixture
def store_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Environment variables pointing the CLI at an SQLite store in ``tmp_path``."""

    def make(name: str = "cache.db", key: str = "key-current-0001", **extra: str) -> dict[str, str]:
        env = {
            "AUTO_CONFIG_CACHE_STORE": f"sqlite://{tmp_path / name}",
            "AUTO_CONFIG_CACHE_KEY": "test",
            "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": key,
        }
        env.update(extra)
        return env

    return make


@contextlib.contextmanager
def captured_service_log(level: str) -> Iterator[io.StringIO]:
    """The service's plain log set-up at ``level``, writing to a buffer; afterwards the root
    logger and every level ``setup_logging`` changed (aiohttp's access log, the plugins' noisy
    loggers) are restored."""
    root = logging.getLogger()
    handlers, root_level = list(root.handlers), root.level
    names = ("aiohttp.access", *get_registry().noisy_loggers())
    levels = {name: logging.getLogger(name).level for name in names}
    setup_logging(level, plain=True)
    buffer = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        for added in list(root.handlers):
            root.removeHandler(added)
        for old in handlers:
            root.addHandler(old)
        root.setLevel(root_level)
        for name, old_level in levels.items():
            logging.getLogger(name).setLevel(old_level)
