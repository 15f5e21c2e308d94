"""StreamManager over a real redis-server: a hard outage (SIGKILL, restart empty) while the
stream keeps changing; the store must end equal to the stream's state. And a restart that serves
from Redis while the stream is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.stream import StreamServer
from tests.items import env_json, filter_json
from tests.redis.servers import RedisServer

from .conftest import RecordingHandler, eventually, make_manager, put_versions, versions

pytestmark = pytest.mark.timeout(120)

INITIAL = {
    "environments": {"e1": env_json("e1", 10), "e2": env_json("e2", 20)},
    "filters": {"f1": filter_json(5)},
}


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def open_cache(redis_process: RedisServer) -> AutoConfigCache:
    return AutoConfigCache.open(
        redis_process.url,
        cache_key="stream-test",
        encryption_key="enc-key-1234",
        options={"timeout": "1"},
    )


async def redis_versions(redis_process: RedisServer) -> dict[str, int] | None:
    """What Redis holds, via a fresh cache; ``None`` while it does not answer."""
    try:
        async with open_cache(redis_process) as reader:
            return versions((await reader.get_all()).snapshot)
    except Exception:
        return None


async def test_redis_killed_and_restarted_empty_ends_equal_to_the_stream(
    server: StreamServer, redis_process: RedisServer
) -> None:
    server.set_snapshot(INITIAL)
    handler = RecordingHandler()
    async with open_cache(redis_process) as cache, make_manager(server, handler, cache) as manager:
        await handler.wait_for(("all_received", "stream"))

        async def redis_matches() -> bool:
            return await redis_versions(redis_process) == put_versions(server.snapshot)

        await eventually(redis_matches, what="put persisted in Redis")

        redis_process.kill()
        await server.push_patch("/environments/e3", env_json("e3", 1))
        await server.push_delete("/environments/e1", 11)
        await server.push_patch("/filters/f1", filter_json(6))
        await handler.wait_for(("filter_updated", "f1", 6))
        await eventually(lambda: manager.status().store_dirty, what="outage noticed", timeout=30)

        redis_process.start()  # same port, no persistence: the store comes back empty
        await eventually(
            lambda: not manager.status().store_dirty, what="resynchronised", timeout=60
        )
        await server.push_patch("/environments/e2", env_json("e2", 21))
        await handler.wait_for(("env_updated", "e2", 21))
        await eventually(redis_matches, what="Redis equals the stream's state", timeout=30)
        assert manager.status().store_error_count >= 1


async def test_restart_serves_from_redis_while_the_stream_is_down(
    server: StreamServer, redis_process: RedisServer
) -> None:
    server.set_snapshot(INITIAL)
    handler = RecordingHandler()
    async with open_cache(redis_process) as cache, make_manager(server, handler, cache) as manager:
        await handler.wait_for(("all_received", "stream"))
        await eventually(lambda: manager.status().last_successful_write_at is not None)

    server.reject_with = 503
    handler = RecordingHandler()
    async with open_cache(redis_process) as cache, make_manager(server, handler, cache) as manager:
        await handler.wait_for(("all_received", "cache"))
        assert versions(manager.snapshot()) == put_versions(INITIAL)
        assert manager.status().cached_data_age_seconds is not None
