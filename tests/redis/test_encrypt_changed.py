"""On a real redis-server: encrypt only what changed (scenarios in :mod:`tests.encrypt_changed`).

A put identical to what is stored costs no encryption and no write, one changed item one of
each, a rewrite of unchanged records all of them; a record deleted behind the cache's back (an
``HDEL`` of the data hash, as an operator or a Relay Proxy would) is written again by the next
put; an item found unencodable when the store reads its blob is refused alone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests import encrypt_changed as scenario
from tests.encrypt_changed import StoreOpener
from tests.redis.conftest import open_store
from tests.redis.servers import RedisServer

pytestmark = pytest.mark.timeout(120)

Scenario = Callable[[StoreOpener], object]


@pytest.mark.parametrize(
    "run",
    [
        scenario.identical_put_costs_nothing,
        scenario.one_changed_item_costs_one_encryption,
        scenario.rewrite_unchanged_encrypts_every_item,
        scenario.unencodable_item_is_refused_alone,
    ],
    ids=lambda run: run.__name__,
)
async def test_redis(redis_server: RedisServer, cache_key: str, run: Scenario) -> None:
    await run(lambda: open_store(redis_server.url, cache_key))  # type: ignore[misc]


async def test_redis_out_of_band_delete_is_repaired_by_the_next_put(
    redis_server: RedisServer, cache_key: str
) -> None:
    def delete(field: str) -> None:
        with redis_server.client() as client:
            assert client.hdel(cache_key, field) == 1

    await scenario.out_of_band_delete_is_repaired_by_the_next_put(
        lambda: open_store(redis_server.url, cache_key), delete
    )
