"""The Redis store's ``cache_get_versions`` (the store audit's cheap read) against hash entries
another program wrote: it agrees with ``cache_get_all`` however odd the hashes are.

A real redis-server; the hashes are written directly with a plain client.
"""

from __future__ import annotations

from autoconfig_cache.records import StoredRecord
from autoconfig_cache_redis.layout import tombstones_key, versions_key
from tests.redis.conftest import StoreMaker
from tests.redis.servers import RedisServer


async def test_versions_agree_with_get_all_on_entries_another_program_wrote(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    try:
        await store.cache_set_all(
            [
                StoredRecord("env:good", 4, b"blob"),
                StoredRecord("env:gone", 7, b"tombstone", deleted=True),
            ],
            False,
        )
        with redis_server.client() as client:
            client.hset(cache_key, "env:relay-wrote", b"blob")  # no versions entry
            client.hset(cache_key, "env:words", b"blob")
            client.hset(versions_key(cache_key), "env:words", "seven")
            client.hset(cache_key, "env:inflated", b"blob")
            client.hset(versions_key(cache_key), "env:inflated", str(2**70))
            client.hset(cache_key, b"env:\xff\xfe", b"blob")  # a field name that is not UTF-8
            # A Relay Proxy wrote the item back after our tombstone: live, of unknown version.
            client.hset(cache_key, "env:both", b"blob")
            client.hset(tombstones_key(cache_key), "env:both", b"tombstone")
            client.hset(versions_key(cache_key), "env:both", "9")
            client.hset(versions_key(cache_key), "env:stale-entry", "3")  # in no other hash

        records = await store.cache_get_all()
        versions = await store.cache_get_versions()
        assert versions == {record.field: record.version for record in records}
        assert versions["env:good"] == 4 and versions["env:gone"] == 7
        assert versions["env:relay-wrote"] == 0 and versions["env:both"] == 0
        assert versions["env:inflated"] == 2**70
        assert "env:stale-entry" not in versions
    finally:
        await store.cache_close()
