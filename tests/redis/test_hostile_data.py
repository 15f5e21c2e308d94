"""The Redis store against records it cannot hold and hash entries another program wrote.

A real redis-server. The hashes are written directly with a plain client, as another program or
a bug would, then read and written through the store and the cache facade.
"""

from __future__ import annotations

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.errors import PartialWriteError
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.report import SkipReason
from autoconfig_cache.storebase import MAX_STORED_VERSION
from autoconfig_cache.testing import as_map, record
from autoconfig_cache_redis import RedisStore
from autoconfig_cache_redis.layout import versions_key
from tests.items import env_json
from tests.redis.conftest import StoreMaker, lose_every_optimistic_set_all
from tests.redis.servers import RedisServer


def make_cache(store: RedisStore, cache_key: str) -> AutoConfigCache:
    return AutoConfigCache(store, cache_key=cache_key, keys=KeyRing.from_strings("redis-hostile"))


def snapshot_of(*env_ids: str, version: int = 1) -> Snapshot:
    return Snapshot(
        {env_id: Environment.from_json(env_json(env_id, version)) for env_id in env_ids}, {}
    )


# ---------------------------------------------------------------------------------------------
# records the store cannot hold
# ---------------------------------------------------------------------------------------------


async def test_set_all_with_a_negative_version_writes_the_others_and_names_it(
    redis_server: RedisServer, make_store: StoreMaker
) -> None:
    # Used to raise StoreError for the whole set_all: nothing written, every re-sync the same.
    store = make_store(redis_server.url)
    good = [record("env:a", 2), record("filter:c", 4)]
    with pytest.raises(PartialWriteError) as raised:
        await store.cache_set_all([good[0], record("env:b", -1), good[1]], False)
    assert as_map(await store.cache_get_all()) == as_map(good)
    assert [(entry.field, entry.version) for entry in raised.value.refused] == [("env:b", -1)]
    assert raised.value.only_refused
    await store.cache_close()


@pytest.mark.parametrize("mode", ["diff", "full"])
async def test_a_refused_record_keeps_what_the_store_held_for_its_field(
    redis_server: RedisServer, make_store: StoreMaker, mode: str
) -> None:
    store = make_store(redis_server.url)
    await store.cache_set_all([record("env:a", 2), record("env:b", 2)], False)
    snapshot = [record("env:a", 4), record("env:b", MAX_STORED_VERSION + 1)]
    if mode == "full":
        other = make_store(redis_server.url)
        modes = lose_every_optimistic_set_all(store, other, record)
    with pytest.raises(PartialWriteError):
        await store.cache_set_all(snapshot, False)
    if mode == "full":
        assert modes[-1] == "full"
        await other.cache_close()
    stored = as_map(await store.cache_get_all())
    assert stored["env:a"] == as_map([record("env:a", 4)])["env:a"]
    assert stored["env:b"] == as_map([record("env:b", 2)])["env:b"]
    await store.cache_close()


# ---------------------------------------------------------------------------------------------
# hash entries another program wrote
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("inflated", [str(2**70), str(MAX_STORED_VERSION + 1), "000" + str(2**60)])
async def test_an_inflated_stored_version_is_reported_and_replaced(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str, inflated: str
) -> None:
    store = make_store(redis_server.url)
    cache = make_cache(store, cache_key)
    await cache.set_all(snapshot_of("e1", "e2", version=3))
    with redis_server.client() as client:
        client.hset(versions_key(cache_key), "env:e1", inflated)

    load = await cache.get_all()
    assert [(item.field, item.reason) for item in load.report.skipped] == [
        ("env:e1", SkipReason.INVALID_VERSION)
    ]
    # The scripts compared the digits and kept the inflated entry for ever.
    assert await cache.upsert(Environment.from_json(env_json("e1", 4))) is True
    reload = await cache.get_all()
    assert reload.report.skipped == ()
    assert reload.snapshot.environments["e1"].version == 4
    await store.cache_close()


@pytest.mark.parametrize("entry", ["abc", "-6", "1_0", " 6", "1E+125"])
async def test_a_versions_entry_that_is_not_digits_is_reported_and_replaced(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str, entry: str
) -> None:
    store = make_store(redis_server.url)
    cache = make_cache(store, cache_key)
    await cache.set_all(snapshot_of("e1", "e2", version=3))
    with redis_server.client() as client:
        client.hset(versions_key(cache_key), "env:e1", entry)

    load = await cache.get_all()
    [skipped] = load.report.skipped
    assert (skipped.field, skipped.reason) == ("env:e1", SkipReason.FOREIGN_DATA)
    assert "versions hash" in skipped.message and "not a decimal integer" in skipped.message
    await cache.set_all(load.snapshot)  # the write after the load repairs it
    assert (await cache.get_all()).report.skipped == ()
    await store.cache_close()


async def test_field_names_that_are_not_items_or_not_utf8_are_reported_and_removed(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    cache = make_cache(store, cache_key)
    await cache.set_all(snapshot_of("good"))
    with redis_server.client() as client:
        client.hset(cache_key, "unparseable name", b"\x00")
        client.hset(cache_key, b"env:\xff\xfe", b"\x00")

    load = await cache.get_all()
    assert set(load.snapshot.environments) == {"good"}
    assert sorted((item.field, item.reason) for item in load.report.skipped) == [
        ("<field not UTF-8: b'env:\\xff\\xfe'>", SkipReason.FOREIGN_DATA),
        ("unparseable name", SkipReason.FOREIGN_FIELD),
    ]
    await cache.set_all(load.snapshot)
    with redis_server.client() as client:
        assert client.hkeys(cache_key) == [b"env:good"]
    await store.cache_close()
