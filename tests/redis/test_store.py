"""What is specific to the Redis store: layout, Relay Proxy sharing, O(changed) writes, TLS,
authentication, error mapping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from autoconfig_cache.errors import (
    PartialWriteError,
    StoreSchemaError,
    StoreUnavailableError,
)
from autoconfig_cache.records import StoredRecord
from autoconfig_cache_redis.layout import versions_key
from tests.redis.conftest import PASSWORD, StoreMaker, lose_every_optimistic_set_all
from tests.redis.servers import RedisServer
from tests.secret_values import known_secret
from tests.services import free_port

#: Passwords of the authentication tests: never to be logged or shown in clear.
WRONG_PASSWORD = known_secret("very-wrong-password")
UNREACHABLE_PASSWORD = known_secret("pa55word-xyz")
OVERRIDDEN_PASSWORD = known_secret("overridden-url-password")


def rec(field: str, version: int, blob: bytes | None = None) -> StoredRecord:
    return StoredRecord(field, version, blob if blob is not None else f"{field}@{version}".encode())


def by_field(records: list[StoredRecord]) -> dict[str, tuple[int, bytes]]:
    return {r.field: (r.version, r.blob) for r in records}


# ---------------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------------


async def test_items_live_in_one_hash_named_exactly_the_cache_key(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    await store.cache_set_all(
        [rec("env:a", 3, b"\x00blob-a"), rec("filter:b", 4, b"blob-b")], False
    )
    await store.cache_close()
    with redis_server.client() as client:
        assert client.type(cache_key) == b"hash"
        assert client.hgetall(cache_key) == {b"env:a": b"\x00blob-a", b"filter:b": b"blob-b"}
        versions = client.hgetall(versions_key(cache_key))
    assert versions[b"env:a"] == b"3"
    assert versions[b"filter:b"] == b"4"


async def test_field_written_by_a_relay_proxy_reads_as_version_zero(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    with redis_server.client() as client:
        client.hset(cache_key, "env:relay", b"relay-blob")
    store = make_store(redis_server.url)
    assert by_field(await store.cache_get_all()) == {"env:relay": (0, b"relay-blob")}
    await store.cache_close()


async def test_field_written_by_a_relay_proxy_is_replaced_by_any_version(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    await store.cache_upsert(rec("env:a", 9))
    with redis_server.client() as client:  # the Relay Proxy overwrites a field and adds one
        client.hset(cache_key, mapping={"env:a": b"relay-a", "env:b": b"relay-b"})
        client.hdel(versions_key(cache_key), "env:a")
    assert await store.cache_upsert(rec("env:a", 1)) is True
    await store.cache_set_all([rec("env:a", 1), rec("env:b", 1)], False)
    assert by_field(await store.cache_get_all()) == {
        "env:a": (1, b"env:a@1"),
        "env:b": (1, b"env:b@1"),
    }
    await store.cache_close()


async def test_versions_left_behind_by_a_relay_proxy_delete_do_not_block_writes(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store(redis_server.url)
    await store.cache_set_all([rec("env:a", 9), rec("env:b", 9)], False)
    with redis_server.client() as client:  # the Relay Proxy's put: DEL + HSET of its snapshot
        client.delete(cache_key)
        client.hset(cache_key, "env:b", b"relay-b")
    assert await store.cache_upsert(rec("env:a", 2)) is True
    await store.cache_set_all([rec("env:a", 2), rec("env:c", 1)], False)
    assert by_field(await store.cache_get_all()) == {
        "env:a": (2, b"env:a@2"),
        "env:c": (1, b"env:c@1"),
    }
    with redis_server.client() as client:
        assert set(client.hkeys(versions_key(cache_key))) == {b"env:a", b"env:c", b"~generation"}
    await store.cache_close()


async def test_key_holding_another_type_is_a_schema_error(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    with redis_server.client() as client:
        client.set(cache_key, b"not a hash")
    store = make_store(redis_server.url)
    with pytest.raises(StoreSchemaError, match="not a hash"):
        await store.cache_get_all()
    with pytest.raises(StoreSchemaError):
        await store.cache_upsert(rec("env:a", 1))
    await store.cache_close()


async def test_negative_version_is_refused(
    redis_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(redis_server.url)
    with pytest.raises(PartialWriteError, match="outside 0") as raised:
        await store.cache_upsert(rec("env:a", -1))
    assert [(entry.field, entry.version) for entry in raised.value.refused] == [("env:a", -1)]
    assert await store.cache_get_all() == []
    await store.cache_close()


# ---------------------------------------------------------------------------------------------
# O(changed) set_all
# ---------------------------------------------------------------------------------------------


def net_input_bytes(server: RedisServer) -> int:
    with server.client() as client:
        return int(client.info("stats")["total_net_input_bytes"])


def write_calls(server: RedisServer) -> int:
    with server.client() as client:
        stats = client.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("hset", "hdel", "del")
    )


async def test_set_all_with_one_change_in_many_sends_only_that_change(
    private_server: RedisServer, make_store: StoreMaker
) -> None:
    count, size = 2000, 1000
    records = [rec(f"env:e{i}", 1, bytes([i % 251]) * size) for i in range(count)]
    store = make_store(private_server.url)
    before = net_input_bytes(private_server)
    await store.cache_set_all(records, False)
    full_write = net_input_bytes(private_server) - before
    assert full_write > count * size  # the first write sends every blob

    changed = [*records[:-1], rec(records[-1].field, 2, b"y" * size)]
    before_bytes, before_writes = net_input_bytes(private_server), write_calls(private_server)
    await store.cache_set_all(changed, False)
    sent = net_input_bytes(private_server) - before_bytes
    writes = write_calls(private_server) - before_writes
    # One blob plus the script call and the reads: far below even 5% of a full rewrite.
    assert sent < full_write / 20
    assert writes <= 4
    assert by_field(await store.cache_get_all())[records[-1].field] == (2, b"y" * size)

    before_writes = write_calls(private_server)
    await store.cache_set_all(changed, False)  # nothing changed: nothing written
    assert write_calls(private_server) == before_writes
    await store.cache_close()


async def test_set_all_rereads_when_another_writer_changes_the_hash_meanwhile(
    redis_server: RedisServer, make_store: StoreMaker
) -> None:
    store, other = make_store(redis_server.url), make_store(redis_server.url)
    await store.cache_set_all([rec("env:a", 1), rec("env:b", 1)], False)
    script = store._script(store._get_client(), "set_all")
    raced = False

    async def racing_script(*, keys: Any, args: Any) -> Any:
        nonlocal raced
        if not raced:  # between set_all's read and its script, another process adds a field
            raced = True
            await other.cache_upsert(rec("env:intruder", 1))
        return await script(keys=keys, args=args)

    store._scripts["set_all"] = racing_script
    await store.cache_set_all([rec("env:a", 1), rec("env:b", 2)], False)
    assert raced
    # The snapshot lacks env:intruder, so it must be gone: the stale diff was not applied.
    assert by_field(await store.cache_get_all()) == {
        "env:a": (1, b"env:a@1"),
        "env:b": (2, b"env:b@2"),
    }
    await store.cache_close()
    await other.cache_close()


# ---------------------------------------------------------------------------------------------
# TLS, authentication, errors
# ---------------------------------------------------------------------------------------------


async def test_tls_option_on_a_redis_url_reaches_a_tls_only_server(
    tls_server: RedisServer, make_store: StoreMaker
) -> None:
    assert tls_server.tls is not None
    store = make_store(
        f"redis://127.0.0.1:{tls_server.port}", tls="true", ca_file=str(tls_server.tls.ca_file)
    )
    assert await store.cache_upsert(rec("env:a", 1)) is True
    await store.cache_close()


async def test_tls_server_with_an_unknown_certificate_authority_is_unavailable(
    tls_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(tls_server.url, retries="0")
    with pytest.raises(StoreUnavailableError, match=r"TLS|certificate|SSL"):
        await store.cache_get_all()
    await store.cache_close()


async def test_tls_insecure_skips_certificate_verification(
    tls_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(tls_server.url, tls_insecure="true")
    assert await store.cache_get_all() == []
    await store.cache_close()


async def test_plain_connection_to_a_tls_only_port_fails_with_a_typed_error(
    tls_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(f"redis://127.0.0.1:{tls_server.port}", timeout="1", retries="0")
    with pytest.raises(StoreUnavailableError):
        await store.cache_get_all()
    await store.cache_close()


async def test_url_password_authenticates(
    password_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(f"redis://:{PASSWORD}@127.0.0.1:{password_server.port}")
    assert await store.cache_upsert(rec("env:a", 1)) is True
    await store.cache_close()


async def test_password_option_overrides_the_url(
    password_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(
        f"redis://:{OVERRIDDEN_PASSWORD}@127.0.0.1:{password_server.port}", password=PASSWORD
    )
    assert await store.cache_get_all() == []
    await store.cache_close()


async def test_wrong_password_is_unavailable_and_never_shown(
    password_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(f"redis://:{WRONG_PASSWORD}@127.0.0.1:{password_server.port}")
    with pytest.raises(StoreUnavailableError) as info:
        await store.cache_get_all()
    assert WRONG_PASSWORD not in str(info.value)
    assert "****" in str(info.value)
    await store.cache_close()


async def test_unreachable_server_fails_fast_with_a_redacted_typed_error(
    make_store: StoreMaker,
) -> None:
    port = free_port()  # nothing listens there
    store = make_store(f"redis://user:{UNREACHABLE_PASSWORD}@127.0.0.1:{port}", timeout="2")
    with pytest.raises(StoreUnavailableError) as info:
        await store.cache_upsert(rec("env:a", 1))
    assert UNREACHABLE_PASSWORD not in str(info.value)
    assert f"127.0.0.1:{port}" in str(info.value)
    await store.cache_close()


async def test_factory_does_not_connect(make_store: StoreMaker) -> None:
    store = make_store(f"redis://127.0.0.1:{free_port()}")
    assert store._client is None
    await store.cache_close()  # closing a store that never connected is fine


async def test_concurrent_operations_beyond_the_pool_size_wait_for_a_connection(
    redis_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(redis_server.url, max_connections="2")
    results = await asyncio.gather(*(store.cache_upsert(rec(f"env:{i}", 1)) for i in range(40)))
    assert all(results)
    assert len(await store.cache_get_all()) == 40
    await store.cache_close()


async def test_valkey_scheme_reaches_the_same_server(
    redis_server: RedisServer, make_store: StoreMaker
) -> None:
    writer = make_store(redis_server.url)
    reader = make_store(f"valkey://127.0.0.1:{redis_server.port}")
    await writer.cache_upsert(rec("env:a", 1))
    assert by_field(await reader.cache_get_all()) == {"env:a": (1, b"env:a@1")}
    await writer.cache_close()
    await reader.cache_close()


async def test_unreachable_cluster_is_unavailable(make_store: StoreMaker) -> None:
    store = make_store(
        f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}", timeout="2"
    )
    with pytest.raises(StoreUnavailableError):
        await store.cache_get_all()
    await store.cache_close()


async def test_unreachable_sentinel_is_unavailable(make_store: StoreMaker) -> None:
    store = make_store(f"redis+sentinel://127.0.0.1:{free_port()}/primary", timeout="2")
    with pytest.raises(StoreUnavailableError):
        await store.cache_get_all()
    await store.cache_close()


async def test_set_all_under_sustained_contention_falls_back_to_a_server_side_diff(
    redis_server: RedisServer, make_store: StoreMaker
) -> None:
    store, other = make_store(redis_server.url), make_store(redis_server.url)
    await store.cache_set_all([rec("env:a", 1), rec("env:b", 1)], False)
    modes = lose_every_optimistic_set_all(store, other, rec)
    await store.cache_set_all([rec("env:a", 1), rec("env:b", 2)], False)
    assert modes == ["diff", "diff", "diff", "full"]
    assert by_field(await store.cache_get_all()) == {
        "env:a": (1, b"env:a@1"),
        "env:b": (2, b"env:b@2"),
    }
    await store.cache_close()
    await other.cache_close()
