"""``autoconfig-cache run`` with the Redis plugin, against a real redis-server on a free port."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import KNOWN_SDK_KEY, run_cli
from tests.service.conftest import AUTOCONFIG_KEY, ServiceProcess, StreamServerProcess, wait_for
from tests.services import require_plugin

require_plugin("autoconfig_cache_redis")
from tests.redis.servers import RedisServer

Start = Callable[..., ServiceProcess]


def redis_env(server: RedisServer, stream: StreamServerProcess) -> dict[str, str]:
    # The Relay Proxy's own variables select the store.
    return {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream.uri,
        "USE_REDIS": "true",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(server.port),
        "AUTO_CONFIG_CACHE_KEY": "service-redis",
    }


def inspect(env: dict[str, str]) -> list[dict[str, object]]:
    result = run_cli(["cache", "inspect", "--json"], env)
    assert result.returncode == 0, result.stderr
    records: list[dict[str, object]] = json.loads(result.stdout)["records"]
    return records


def test_run_with_redis_writes_the_cache_and_restarts_from_it(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        env = redis_env(redis, stream_server)
        first = services(env, "first").wait_listening()
        first.wait_status(
            lambda s: s["ready"] and s["store"]["lastSuccessfulWrite"], "written to redis"
        )
        assert first.status()["store"]["scheme"] == "redis"
        assert first.stop() == 0
        records = inspect(env)
        assert len(records) == 8 and all(r["problem"] is None for r in records)
        assert KNOWN_SDK_KEY.encode() not in b"".join(redis.client().hvals("service-redis"))

        stream_server.go_down()
        second = services(env, "second").wait_listening()
        wait_for(lambda: second.get("/readyz")[0] == 200, "ready from the redis cache")
        assert second.status()["source"] == "cache"
        assert second.stop() == 0
    finally:
        redis.kill()


def test_redis_down_at_start_then_back_is_resynchronised(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    redis = RedisServer(tmp_path / "redis")  # a port is reserved, nothing listens yet
    env = redis_env(redis, stream_server)
    service = services(env).wait_listening()
    status = service.wait_status(
        lambda s: s["ready"] and s["store"]["errorCount"] > 0, "ready with the store down"
    )
    assert status["source"] == "stream"
    assert status["store"]["lastSuccessfulWrite"] is None
    redis.start()
    try:
        service.wait_status(
            lambda s: (
                s["store"]["lastSuccessfulWrite"] is not None and not s["store"]["resyncPending"]
            ),
            "re-synchronisation after the store came back",
            timeout=60,
        )
        assert len(inspect(env)) == 8
        assert service.stop() == 0
    finally:
        redis.kill()


def test_redis_password_never_appears_in_logs_or_status(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    password = "pw-" + KNOWN_SDK_KEY
    redis = RedisServer(tmp_path / "redis", password=password)
    redis.start()
    try:
        env = {**redis_env(redis, stream_server), "REDIS_PASSWORD": password}
        service = services(env).wait_listening()
        status = service.wait_status(
            lambda s: s["ready"] and s["store"]["lastSuccessfulWrite"], "written to redis"
        )
        assert status["store"]["errorCount"] == 0
        assert service.stop() == 0
        records = inspect(env)
        assert len(records) == 8
        # A wrong password: the store fails, the service still serves, and says why, masked.
        wrong = {**env, "REDIS_PASSWORD": "wrong-" + KNOWN_SDK_KEY}
        failing = services(wrong, "wrong").wait_listening()
        failing_status = failing.wait_status(
            lambda s: s["ready"] and s["store"]["errorCount"] > 0, "a store error"
        )
        assert failing.stop() == 0
        for text in (service.log_text(), failing.log_text(), json.dumps(failing_status)):
            assert KNOWN_SDK_KEY not in text
    finally:
        redis.kill()
