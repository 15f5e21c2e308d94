"""Tombstones in the Redis store: kept in the tombstones hash, never in the hash a Relay reads.

A Relay Proxy reads the data hash (key = the cache key) with HGETALL and decodes every field as
an item (ld-relay ``internal/autoconfigcache/redis_store.go``: ``GetAll`` is ``HGetAll`` of the
cache key; ``SetAll`` is ``MULTI; DEL; HSET; EXEC``, ``Upsert`` an ``HSET``). These tests look at
that hash directly after each write, and play the Relay Proxy's writes with a plain client.
"""

from __future__ import annotations

from autoconfig_cache.records import StoredRecord
from autoconfig_cache.testing import as_states, tombstone
from autoconfig_cache.testing import record as item
from autoconfig_cache_redis.layout import tombstones_key, versions_key
from tests.redis.conftest import StoreMaker, lose_every_optimistic_set_all
from tests.redis.servers import RedisClusterProcesses, RedisServer


def relay_view(server: RedisServer, cache_key: str) -> dict[bytes, bytes]:
    """What a Relay Proxy loads: HGETALL of the cache key."""
    with server.client() as client:
        view: dict[bytes, bytes] = client.hgetall(cache_key)
    return view


def relay_put(server: RedisServer, cache_key: str, fields: dict[str, bytes]) -> None:
    """A Relay Proxy's full rewrite: MULTI; DEL; HSET; EXEC."""
    with server.client() as client, client.pipeline(transaction=True) as pipe:
        pipe.delete(cache_key)
        pipe.hset(cache_key, mapping=fields)
        pipe.execute()


def blobs(*records: StoredRecord) -> dict[bytes, bytes]:
    return {r.field.encode(): r.blob for r in records}


async def test_after_each_upsert_and_delete_the_relay_reads_exactly_the_live_items(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    a, b, c = item("env:a", 2), item("env:b", 2), item("filter:c", 4)
    for record in (a, b, c):
        await store.cache_upsert(record)
    assert relay_view(redis_server, cache_key) == blobs(a, b, c)
    gone = tombstone("env:b", 3)
    assert await store.cache_upsert(gone) is True
    assert relay_view(redis_server, cache_key) == blobs(a, c)
    filter_gone = tombstone("filter:c", 5)
    assert await store.cache_upsert(filter_gone) is True
    assert relay_view(redis_server, cache_key) == blobs(a)
    back = item("env:b", 4)
    assert await store.cache_upsert(back) is True
    assert relay_view(redis_server, cache_key) == blobs(a, back)
    assert as_states(await store.cache_get_all()) == {
        "env:a": (2, a.blob, False),
        "env:b": (4, back.blob, False),
        "filter:c": (5, filter_gone.blob, True),
    }
    with redis_server.client() as client:
        assert client.hgetall(tombstones_key(cache_key)) == blobs(filter_gone)
    await store.cache_close()


async def test_after_each_set_all_the_relay_reads_exactly_the_live_items(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    a, b, c = item("env:a", 2), tombstone("env:b", 3), item("filter:c", 2)
    await store.cache_set_all([a, b, c], False)
    assert relay_view(redis_server, cache_key) == blobs(a, c)
    # a is deleted, b comes back, c stays, d is deleted before we ever saw it.
    a2, b2, d = tombstone("env:a", 3), item("env:b", 4), tombstone("env:d", 9)
    await store.cache_set_all([a2, b2, c, d], False)
    assert relay_view(redis_server, cache_key) == blobs(b2, c)
    assert as_states(await store.cache_get_all()) == {
        "env:a": (3, a2.blob, True),
        "env:b": (4, b2.blob, False),
        "filter:c": (2, c.blob, False),
        "env:d": (9, d.blob, True),
    }
    await store.cache_set_all([c], False)  # the tombstones leave the snapshot: gone everywhere
    assert relay_view(redis_server, cache_key) == blobs(c)
    with redis_server.client() as client:
        assert client.exists(tombstones_key(cache_key)) == 0
        assert set(client.hkeys(versions_key(cache_key))) == {b"filter:c", b"~generation"}
    await store.cache_close()


async def test_relay_put_over_a_tombstone_reads_as_a_relay_written_item(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    await store.cache_upsert(tombstone("env:a", 7))
    relay_put(redis_server, cache_key, {"env:a": b"relay-a"})
    # The Relay Proxy's item is what both readers see, as a record of unknown version.
    assert as_states(await store.cache_get_all()) == {"env:a": (0, b"relay-a", False)}
    # Any write replaces it, as for any Relay-written field, and drops the stale tombstone.
    ours = item("env:a", 2)
    assert await store.cache_upsert(ours) is True
    assert relay_view(redis_server, cache_key) == blobs(ours)
    with redis_server.client() as client:
        assert client.hexists(tombstones_key(cache_key), "env:a") == 0
    assert as_states(await store.cache_get_all()) == {"env:a": (2, ours.blob, False)}
    await store.cache_close()


async def test_set_all_deletes_again_an_item_a_relay_wrote_over_a_tombstone(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    gone = tombstone("env:a", 7)
    await store.cache_upsert(gone)
    relay_put(redis_server, cache_key, {"env:a": b"relay-a", "env:b": b"relay-b"})
    kept = item("env:b", 2)
    await store.cache_set_all([gone, kept], False)
    assert relay_view(redis_server, cache_key) == blobs(kept)
    assert as_states(await store.cache_get_all()) == {
        "env:a": (7, gone.blob, True),
        "env:b": (2, kept.blob, False),
    }
    await store.cache_close()


async def test_relay_put_leaves_tombstones_of_fields_it_does_not_write_guarding(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    await store.cache_upsert(item("env:a", 6))
    gone = tombstone("env:b", 7)
    await store.cache_upsert(gone)
    relay_put(redis_server, cache_key, {"env:a": b"relay-a"})
    assert as_states(await store.cache_get_all())["env:b"] == (7, gone.blob, True)
    # A lagging writer of ours still cannot bring the deleted item back.
    assert await store.cache_upsert(item("env:b", 6)) is False
    assert relay_view(redis_server, cache_key) == {b"env:a": b"relay-a"}
    await store.cache_close()


async def test_tombstone_left_in_the_data_hash_by_0_1_loads_and_moves_on_the_next_put(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    old = tombstone("env:a", 7)
    with redis_server.client() as client:  # the layout 0.1 wrote: tombstones in the data hash
        client.hset(cache_key, mapping={"env:a": old.blob, "env:b": b"item-b"})
        client.hset(versions_key(cache_key), mapping={"env:a": "7", "env:b": "4"})
    store = make_store(redis_server.url)
    # The store cannot tell it is a tombstone (the codec does, from the envelope).
    assert as_states(await store.cache_get_all())["env:a"] == (7, old.blob, False)
    # The next put carries the same tombstone at the same version: it moves out of sight.
    await store.cache_set_all([old, StoredRecord("env:b", 4, b"item-b")], False)
    assert relay_view(redis_server, cache_key) == {b"env:b": b"item-b"}
    assert as_states(await store.cache_get_all()) == {
        "env:a": (7, old.blob, True),
        "env:b": (4, b"item-b", False),
    }
    await store.cache_close()


async def test_tombstone_left_in_the_data_hash_by_0_1_moves_on_a_newer_delete(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    with redis_server.client() as client:
        client.hset(cache_key, "env:a", b"0.1 tombstone")
        client.hset(versions_key(cache_key), "env:a", "7")
    store = make_store(redis_server.url)
    newer = tombstone("env:a", 9)
    assert await store.cache_upsert(newer) is True
    assert relay_view(redis_server, cache_key) == {}
    assert as_states(await store.cache_get_all()) == {"env:a": (9, newer.blob, True)}
    await store.cache_close()


async def test_an_equal_version_item_in_set_all_never_displaces_a_tombstone(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    gone = tombstone("env:a", 7)
    await store.cache_upsert(gone)
    await store.cache_set_all([StoredRecord("env:a", 7, b"item at the same version")], False)
    assert relay_view(redis_server, cache_key) == {}
    assert as_states(await store.cache_get_all()) == {"env:a": (7, gone.blob, True)}
    await store.cache_close()


async def test_server_side_set_all_moves_and_removes_tombstones_too(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store, other = make_store(redis_server.url), make_store(redis_server.url)
    await store.cache_set_all([item("env:a", 2), tombstone("env:stale", 3)], False)
    moved = tombstone("env:old", 5)
    with redis_server.client() as client:  # a 0.1 tombstone, to be moved by the full mode
        client.hset(cache_key, "env:old", moved.blob)
        client.hset(versions_key(cache_key), "env:old", "5")
    modes = lose_every_optimistic_set_all(store, other, tombstone)
    deleted = tombstone("env:a", 3)
    await store.cache_set_all([moved, deleted], False)
    assert modes[-1] == "full"
    assert relay_view(redis_server, cache_key) == {}
    assert as_states(await store.cache_get_all()) == {
        "env:old": (5, moved.blob, True),
        "env:a": (3, deleted.blob, True),
    }
    await store.cache_close()
    await other.cache_close()


async def test_purge_removes_a_tombstone_and_its_version(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    await store.cache_upsert(tombstone("env:a", 7))
    assert await store.cache_delete("env:a", 8) is True
    with redis_server.client() as client:
        assert client.exists(tombstones_key(cache_key)) == 0
        assert client.hexists(versions_key(cache_key), "env:a") == 0
    assert await store.cache_get_all() == []
    await store.cache_close()


async def test_clear_deletes_the_tombstones_hash(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    await store.cache_set_all([item("env:a", 2), tombstone("env:b", 3)], False)
    await store.cache_clear()
    with redis_server.client() as client:
        for key in (cache_key, versions_key(cache_key), tombstones_key(cache_key)):
            assert client.exists(key) == 0, key
    await store.cache_close()


async def test_tombstones_work_in_a_cluster_with_a_tagged_cache_key(
    redis_cluster: RedisClusterProcesses, make_store: StoreMaker, cache_key: str
) -> None:
    key = f"app{{{cache_key}}}"
    store = make_store(redis_cluster.url, key)
    a = item("env:a", 2)
    await store.cache_set_all([a, tombstone("env:b", 3)], False)
    assert await store.cache_upsert(tombstone("env:a", 3)) is True
    assert as_states(await store.cache_get_all()) == {
        "env:a": (3, tombstone("env:a", 3).blob, True),
        "env:b": (3, tombstone("env:b", 3).blob, True),
    }
    await store.cache_clear()
    await store.cache_close()
