"""Scenario 3: a ``run`` process is SIGKILLed while it writes a 10,000-environment ``put``.

The store already holds the stream's first put (10,000 environments at version 1, written by a
first instance). The stream then changes every environment (version 2); a second instance
receives that put and is SIGKILLed as soon as it is ready, while it encrypts and writes the
10,000 changed items (its ``/metrics`` says no write had completed yet). A third instance then
starts with the stream down (503) and must become ready from the store: every item decrypts,
and each is at a version the stream sent. ``set_all`` is atomic in both stores, so the store
holds one put or the other, never a mixture.
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.resilience.conftest import (
    LeakWatch,
    WatchedService,
    assert_no_leak,
    load_store,
    put_data,
    record_figures,
    service_env,
    snapshot_versions,
    status_versions,
)
from tests.service.conftest import StreamServerProcess, wait_for
from tests.services import require_plugin

ENVIRONMENTS = 10_000


def sqlite_store(directory: Path) -> tuple[str, Callable[[], None]]:
    return f"sqlite://{directory / 'cache.db'}", lambda: None


def redis_store(directory: Path) -> tuple[str, Callable[[], None]]:
    require_plugin("autoconfig_cache_redis")
    from tests.redis.servers import RedisServer

    server = RedisServer(directory / "redis")
    server.start()
    return server.url, server.kill


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_a_process_killed_mid_write_leaves_a_store_a_fresh_process_is_ready_from(
    store: str,
    tmp_path: Path,
    stream_factory: Callable[..., StreamServerProcess],
    services: Callable[..., WatchedService],
    watch: LeakWatch,
) -> None:
    store_url, stop_store = {"sqlite": sqlite_store, "redis": redis_store}[store](tmp_path)
    try:
        first_put = put_data(ENVIRONMENTS, 0, version=1)
        stream = stream_factory(first_put)
        env = service_env(stream.uri, store_url)
        first = services(env, "first").wait_listening()
        first.wait_status(
            lambda s: s["ready"] and s["store"]["lastSuccessfulWrite"], "first put written", 120
        )
        assert first.stop() == 0

        second_put = put_data(ENVIRONMENTS, 0, version=2)
        # A put this size exceeds the control endpoint's body limit: restart "LaunchDarkly"
        # with the changed data instead (no client is connected at this moment).
        stream.stop()
        stream = stream_factory(second_put, port=stream.port)
        second = services(env, "killed").wait_listening()
        wait_for(lambda: second.get("/readyz")[0] == 200, "the second put applied", 120)
        last_write_age = second.metric("store_last_write_age_seconds")
        os.kill(second.process.pid, signal.SIGKILL)
        second.process.wait()
        killed_before_write_completed = math.isnan(last_write_age)

        stream.go_down()
        third = services(env, "fresh").wait_listening()
        wait_for(lambda: third.get("/readyz")[0] == 200, "ready from the store", 120)
        status = third.status()
        served = status_versions(status)

        loaded = load_store(store_url)
        stored = snapshot_versions(loaded.snapshot)
        verify = watch.cli(["cache", "verify", "--json"], env)
        figures: dict[str, Any] = {
            "store": store,
            "environments": ENVIRONMENTS,
            "killed_before_write_completed": killed_before_write_completed,
            "store_after_kill": {
                f"v{version}": sum(1 for v in stored.values() if v == version) for version in (1, 2)
            },
            "skipped_on_load": len(loaded.report.skipped),
            "fresh_instance_source": status["source"],
            "fresh_instance_environments": len(served),
            "verify_exit": verify.returncode,
        }
        assert third.stop() == 0
        assert_no_leak(watch, figures)
        record_figures(f"3 crash mid-write ({store})", figures)

        assert killed_before_write_completed  # the kill did land before the write was done
        assert status["source"] == "cache"
        assert loaded.report.skipped == ()
        assert len(stored) == ENVIRONMENTS
        # Every item at a version the stream sent, and one put or the other as a whole.
        assert set(stored.values()) in ({1}, {2})
        assert served == stored
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        stop_store()
