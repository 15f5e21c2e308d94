"""On a real redis-server: a record loaded under a previous encryption key is re-encrypted
under the current key by the next ordinary put (``set_all`` without ``rewrite_unchanged``, and a
stream put identical to what is stored, also one that won the race against the cache read). The scenarios are in :mod:`tests.key_rotation`."""

from __future__ import annotations

import pytest

from autoconfig_cache import StorageFormat
from autoconfig_cache.stream import StreamServer
from tests.key_rotation import (
    FORMATS,
    rotate_by_identical_stream_put,
    rotate_by_ordinary_set_all,
    rotate_by_stream_put_that_won_the_race,
    stream_server,
)
from tests.redis.servers import RedisServer

__all__ = ["stream_server"]  # a fixture: imported to be used by name

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
async def test_ordinary_set_all_reencrypts_records_loaded_under_a_previous_key(
    redis_server: RedisServer, cache_key: str, fmt: StorageFormat
) -> None:
    await rotate_by_ordinary_set_all(redis_server.url, cache_key, fmt)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
async def test_identical_stream_put_reencrypts_records_loaded_under_a_previous_key(
    redis_server: RedisServer, cache_key: str, fmt: StorageFormat, stream_server: StreamServer
) -> None:
    await rotate_by_identical_stream_put(redis_server.url, cache_key, fmt, stream_server)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
async def test_stream_put_that_cancelled_the_cache_read_reencrypts_records_under_a_previous_key(
    redis_server: RedisServer, cache_key: str, fmt: StorageFormat, stream_server: StreamServer
) -> None:
    await rotate_by_stream_put_that_won_the_race(redis_server.url, cache_key, fmt, stream_server)
