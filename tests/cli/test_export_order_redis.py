"""``cache export`` on a real redis-server writes the same bytes for the same data, whatever
order the store returns the items in (docs/operations.md, "Output of the cache tools").

A Redis hash kept as a listpack returns its fields in the order they were written, so the same
items written in two orders come back in two orders: what backups taken on two days can see
(a large hash returns them in hash-table order, which also changes as it grows). The server
keeps every hash of this test a listpack, so the two orders are certain. (The SQLite store
happens to return them sorted, so it could not show the difference.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from autoconfig_cache import AutoConfigCache, Snapshot
from autoconfig_cache.models import Environment, Filter
from tests.cli.conftest import load, run_cli
from tests.cli.test_readable_output import long_data
from tests.secret_values import known_secret
from tests.services import require_plugin

require_plugin("autoconfig_cache_redis")

from tests.redis.servers import RedisServer  # after the plugin check, which skips without it

KEY = known_secret("key-export-order-redis-0001")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    # Values of up to 100,000 bytes stay in a listpack (default: 64), encrypted records included.
    started = RedisServer(
        tmp_path_factory.mktemp("redis-export-order"),
        extra=("--hash-max-listpack-value", "100000"),
    )
    started.start()
    yield started
    started.kill()


def write_one_by_one(url: str, cache_key: str, items: Sequence[Environment | Filter]) -> None:
    async def write() -> None:
        async with AutoConfigCache.open(url, cache_key=cache_key, encryption_key=KEY) as cache:
            for item in items:
                assert await cache.upsert(item)

    asyncio.run(write())


def env_for(url: str, cache_key: str) -> dict[str, str]:
    return {
        "AUTO_CONFIG_CACHE_STORE": url,
        "AUTO_CONFIG_CACHE_KEY": cache_key,
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
    }


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param(False, id="masked"),
        pytest.param(True, id="include-secrets", marks=pytest.mark.prints_secrets),
    ],
)
def test_export_is_byte_identical_for_the_same_data_stored_in_another_order(
    server: RedisServer, secrets: bool, request: pytest.FixtureRequest
) -> None:
    data: dict[str, Any] = long_data()
    snapshot, problems = Snapshot.from_put_data(data)
    assert not problems
    items = list(snapshot.items())
    first, second = f"{request.node.name}-first", f"{request.node.name}-second"
    write_one_by_one(server.url, first, items)
    write_one_by_one(server.url, second, items[::-1])
    # The premise: the store gives the items back in two different orders.
    orders = [
        list(load(server.url, encryption_key=KEY, cache_key=key).snapshot.environments)
        for key in (first, second)
    ]
    assert orders[0] != orders[1]

    flag = ["--include-secrets"] if secrets else []
    exports = [
        run_cli(["cache", "export", *flag], env_for(server.url, key)) for key in (first, second)
    ]
    assert all(result.returncode == 0 for result in exports), [r.stderr for r in exports]
    assert exports[0].stdout == exports[1].stdout

    exported = json.loads(exports[0].stdout)
    assert list(exported) == ["environments", "filters"]
    assert list(exported["environments"]) == sorted(data["environments"])
    assert list(exported["filters"]) == sorted(data["filters"])
    # Each item's own fields keep the order they came in: a Relay Proxy reads the last of two
    # fields named alike in different case, so that order is not ours to change.
    for env_id, env in data["environments"].items():
        assert list(exported["environments"][env_id]) == list(env)
