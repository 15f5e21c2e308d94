"""``autoconfig-cache run`` repairs a Redis cache that lost its data, with no stream event.

Real processes: the local stream server, ``run`` instances and a real redis-server, whose hashes
are deleted and which is restarted empty (no persistence) behind the instances' backs. Every
instance audits every second (``AUTO_CONFIG_CACHE_AUDIT_INTERVAL=1``); the stream stays quiet
after its first ``put``, so only the audit can bring the data back.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.service.conftest import AUTOCONFIG_KEY, ServiceProcess, StreamServerProcess, wait_for
from tests.service.test_run_audit import (
    ENCRYPTION_KEY,
    ITEMS,
    audits,
    ready_and_written,
    wait_audited,
)
from tests.services import require_plugin

require_plugin("autoconfig_cache_redis")
from autoconfig_cache_redis.layout import tombstones_key, versions_key
from tests.redis.servers import RedisServer

Start = Callable[..., ServiceProcess]

REDIS_KEY = "audit-redis"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def redis_env(server: RedisServer, stream: StreamServerProcess) -> dict[str, str]:
    return {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream.uri,
        "USE_REDIS": "true",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(server.port),
        "AUTO_CONFIG_CACHE_KEY": REDIS_KEY,
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "AUTO_CONFIG_CACHE_AUDIT_INTERVAL": "1",
    }


def redis_fields(server: RedisServer) -> dict[bytes, bytes]:
    with server.client() as client:
        versions: dict[bytes, bytes] = client.hgetall(versions_key(REDIS_KEY))
        fields = client.hkeys(REDIS_KEY)
    return {field: versions.get(field, b"") for field in fields}


def test_a_redis_hash_deleted_behind_a_running_instance_is_written_back(
    redis: RedisServer, stream_server: StreamServerProcess, services: Start
) -> None:
    service = services(redis_env(redis, stream_server)).wait_listening()
    service.wait_status(ready_and_written, "the put written")
    before = redis_fields(redis)
    assert len(before) == ITEMS

    with redis.client() as client:
        client.delete(REDIS_KEY, versions_key(REDIS_KEY), tombstones_key(REDIS_KEY))
    wait_for(lambda: len(redis_fields(redis)) == ITEMS, "the audit to write the hash back")

    assert redis_fields(redis) == before  # every field, at its version
    status = service.status()
    assert status["audit"]["repairedTotal"] >= ITEMS
    assert status["store"]["errorCount"] == 0
    assert service.stop() == 0


def test_a_redis_restarted_empty_is_written_back(
    redis: RedisServer, stream_server: StreamServerProcess, services: Start
) -> None:
    service = services(redis_env(redis, stream_server)).wait_listening()
    service.wait_status(ready_and_written, "the put written")
    before = redis_fields(redis)

    redis.restart()  # the same port, no persistence: an empty server
    assert redis_fields(redis) == {}
    wait_for(lambda: len(redis_fields(redis)) == ITEMS, "the audit to write the cache back")

    assert redis_fields(redis) == before
    status = service.wait_status(
        lambda s: s["audit"]["lastResult"] in ("ok", "repaired"), "a successful audit"
    )
    assert status["audit"]["repairedTotal"] >= ITEMS
    assert service.stop() == 0


class Monitor:
    """``redis-cli MONITOR`` into a file: every command the server runs, scripts' included."""

    def __init__(self, server: RedisServer, path: Path) -> None:
        self.path = path
        self.file = path.open("wb")
        self.process = subprocess.Popen(
            ["redis-cli", "-p", str(server.port), "monitor"],
            stdout=self.file,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: path.read_bytes().startswith(b"OK"), "MONITOR to start")

    def stop(self) -> bytes:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.file.close()
        return self.path.read_bytes()


def record_writes(monitor_output: bytes) -> int:
    """Records written: HSETs to the data or tombstones hash (each write sets exactly one of
    them, see autoconfig_cache_redis.scripts: write())."""
    keys = b"|".join(re.escape(key.encode()) for key in (REDIS_KEY, tombstones_key(REDIS_KEY)))
    pattern = re.compile(rb'\] "hset" "(?:' + keys + rb')" ', re.IGNORECASE)
    return len(pattern.findall(monitor_output))


def test_many_instances_repair_a_deleted_hash_with_a_bounded_number_of_writes(
    tmp_path: Path, redis: RedisServer, stream_server: StreamServerProcess, services: Start
) -> None:
    instances = [
        services(redis_env(redis, stream_server), f"instance{index}").wait_listening()
        for index in range(4)
    ]
    counts = [
        instance.wait_status(
            lambda s: ready_and_written(s) and audits(s) >= 1, "ready, written, audited"
        )
        for instance in instances
    ]
    before = redis_fields(redis)
    audited = [audits(status) for status in counts]
    repaired_before = sum(status["audit"]["repairedTotal"] for status in counts)

    monitor = Monitor(redis, tmp_path / "monitor.txt")
    try:
        with redis.client() as client:
            client.delete(REDIS_KEY, versions_key(REDIS_KEY), tombstones_key(REDIS_KEY))
        wait_for(lambda: len(redis_fields(redis)) == ITEMS, "the hash written back")
        # Every instance has audited the store at least once since the repair began.
        statuses = [
            wait_audited(instance, count + 2, "two audits after the DEL")
            for instance, count in zip(instances, audited, strict=True)
        ]
    finally:
        output = monitor.stop()

    assert redis_fields(redis) == before
    measured = record_writes(output)
    repaired = sum(status["audit"]["repairedTotal"] for status in statuses) - repaired_before
    # The design's bound: each instance writes each lost record at most once (an audit that
    # finds the store repaired writes nothing; the version guards refuse a duplicate).
    assert ITEMS <= measured <= len(instances) * ITEMS
    assert repaired == measured  # what the instances counted is what the server ran
    print(
        f"\n{len(instances)} instances repaired {ITEMS} records after a DEL with {measured} "
        f"record writes (bound {len(instances) * ITEMS})"
    )
    for instance in instances:
        assert instance.stop() == 0
