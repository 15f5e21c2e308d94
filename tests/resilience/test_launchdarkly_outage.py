"""Scenario 4: LaunchDarkly is unreachable while the service scales out.

Instance A runs and fills the shared Redis cache. Then the stream goes down in three ways, one
after the other, and a new instance starts during each: B while connections are refused (no
process listens), C while the stream answers 503, D while it accepts the connection and then
sends nothing (a hung server). Each new instance must become ready from the cache. Then the
stream comes back with changes (one environment changed, one removed, one added, one filter
changed): every instance and the store must converge on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.resilience.conftest import (
    LeakWatch,
    WatchedService,
    assert_no_leak,
    converge,
    diff,
    environment,
    filter_json,
    put_data,
    record_figures,
    service_env,
    store_versions,
    versions_of,
    watch_data,
)
from tests.service.conftest import StreamServerProcess, wait_for
from tests.services import require_plugin

require_plugin("autoconfig_cache_redis")
from tests.redis.servers import RedisServer


def ready_from_cache(service: WatchedService) -> float:
    """Seconds from now until ``/readyz`` is 200; the source must be the cache."""
    start = time.monotonic()
    service.wait_listening()
    wait_for(lambda: service.get("/readyz")[0] == 200, "ready from the cache", 60)
    elapsed = time.monotonic() - start
    assert service.status()["source"] == "cache"
    return elapsed


def test_new_instances_are_ready_from_the_cache_during_an_outage_and_all_converge_after(
    tmp_path: Path,
    stream_factory: Callable[..., StreamServerProcess],
    services: Callable[..., WatchedService],
    watch: LeakWatch,
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        data = put_data(20, 4)
        stream = stream_factory(data)
        env = service_env(stream.uri, redis.url)
        a = services(env, "a").wait_listening()
        a.wait_status(lambda s: s["ready"] and s["store"]["lastSuccessfulWrite"], "A written")
        ready: dict[str, float] = {}

        # 1. Connection refused: nothing listens on the stream's port.
        port = stream.port
        stream.stop()
        b = services(env, "b")
        ready["refused"] = ready_from_cache(b)

        # 2. 503: the stream is back on its port but rejects every connection. The snapshot is
        # the old one, so a client that connects before the rejection is set sees no change.
        stream = stream_factory(data, port=port)
        stream.go_down()
        c = services(env, "c")
        ready["503"] = ready_from_cache(c)

        # 3. Hung: connections are accepted, then nothing is sent.
        stream.control("silent", {"silent": True})
        stream.come_back()
        d = services(env, "d")
        ready["hung"] = ready_from_cache(d)
        instances = [a, b, c, d]
        assert all(instance.get("/readyz")[0] == 200 for instance in instances)

        # LaunchDarkly returns with changes.
        changed = put_data(20, 4)
        ids = sorted(changed["environments"])
        changed["environments"][ids[0]] = environment(ids[0], 2)
        del changed["environments"][ids[1]]
        changed["environments"]["ffffffffffffffffffff0001"] = environment(
            "ffffffffffffffffffff0001", 1
        )
        changed["filters"]["filter0000"] = filter_json("filter0000", 3)
        watch_data(watch, changed)
        stream.control("put", changed)  # sent to nobody (connections are silent); kept as state
        stream.control("silent", {"silent": False})
        stream.control("drop")  # the hung connections end; clients reconnect with backoff
        returned_at = time.monotonic()
        expected = versions_of(changed)
        last: dict[str, Any] = {}

        def converged() -> bool:
            last["instances"] = [instance.versions() for instance in instances]
            last["store"] = store_versions(redis.url) or {}
            return last["store"] == expected and all(v == expected for v in last["instances"])

        seconds = converge(converged, timeout=120)
        sources = [instance.status()["source"] for instance in instances]
        figures = {
            "instances": len(instances),
            "seconds_to_ready_from_cache": {k: round(v, 2) for k, v in ready.items()},
            "seconds_to_converge_after_stream_returned": (
                None if seconds is None else round(time.monotonic() - returned_at, 2)
            ),
            "sources_after": sources,
            "updates_lost": len(diff(expected, last["store"])),
        }
        for instance in instances:
            assert instance.stop() == 0
        assert_no_leak(watch, figures)
        record_figures("4 LaunchDarkly outage during scale-out (redis)", figures)

        assert seconds is not None, (diff(expected, last["store"]), last["instances"])
        assert sources == ["stream"] * len(instances)
    finally:
        redis.kill()
