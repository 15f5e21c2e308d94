"""``cache inspect``, ``verify`` and ``export`` on a real redis-server: a cache key that holds
nothing (a mistyped one) is exit status 3 naming the URL and the key, unless ``--allow-empty``;
nothing is written to the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoconfig_cache.demo.data import sample_put_data
from tests.cli.conftest import run_cli, seed
from tests.secret_values import known_secret
from tests.services import require_plugin

require_plugin("autoconfig_cache_redis")
import redis  # after the plugin check, which skips or fails without it

from tests.redis.servers import RedisServer

KEY = known_secret("key-read-only-redis-0001")
READ_ONLY_TOOLS = (["inspect"], ["verify"], ["export"])
NOTHING_THERE = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path_factory.mktemp("redis-read-only-tools"))
    started.start()
    yield started
    started.kill()


def env_for(url: str, cache_key: str) -> dict[str, str]:
    return {
        "AUTO_CONFIG_CACHE_STORE": url,
        "AUTO_CONFIG_CACHE_KEY": cache_key,
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
    }


def keys_on(server: RedisServer) -> list[str]:
    client = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    try:
        return sorted(str(key) for key in client.keys("*"))
    finally:
        client.close()


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_a_mistyped_cache_key_exits_3_and_writes_nothing(
    server: RedisServer, tool: list[str], tmp_path: Path
) -> None:
    seed(
        server.url,
        sample_put_data(environments=1, filters=1),
        encryption_key=KEY,
        cache_key=f"ro-{tmp_path.name}",
    )
    before = keys_on(server)
    result = run_cli(["cache", *tool], env_for(server.url, f"ro-{tmp_path.name}-typo"))
    assert result.returncode == NOTHING_THERE, (result.stdout, result.stderr)
    assert server.url in result.stderr and f"'ro-{tmp_path.name}-typo'" in result.stderr
    assert keys_on(server) == before


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_allow_empty_exits_0_on_an_empty_cache_key(
    server: RedisServer, tool: list[str], tmp_path: Path
) -> None:
    before = keys_on(server)
    result = run_cli(["cache", *tool, "--allow-empty"], env_for(server.url, f"ro-{tmp_path.name}"))
    assert result.returncode == 0, result.stderr
    assert keys_on(server) == before


def test_the_seeded_cache_key_is_read(server: RedisServer, tmp_path: Path) -> None:
    cache_key = f"ro-{tmp_path.name}"
    seed(
        server.url,
        sample_put_data(environments=1, filters=1),
        encryption_key=KEY,
        cache_key=cache_key,
    )
    for tool in READ_ONLY_TOOLS:
        result = run_cli(["cache", *tool], env_for(server.url, cache_key))
        assert result.returncode == 0, (tool, result.stderr)
