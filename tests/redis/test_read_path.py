"""The Redis store's read path: what a cold ``cache_get_all`` sends, and the records it builds.

A real redis-server. Round trips are counted by the server itself: ``total_reads_processed``
(INFO stats) grows by one for each batch of commands it reads from a client; ``commandstats``
and ``errorstats`` say which commands ran and which were refused.
"""

from __future__ import annotations

from autoconfig_cache.testing import as_map, record
from autoconfig_cache_redis.layout import versions_key
from tests.redis.conftest import PASSWORD, StoreMaker
from tests.redis.servers import RedisServer

#: What a read sends once connected: the three hashes in one transaction.
TRANSACTION = {"multi": 1, "hgetall": 3, "exec": 1}


async def cold_read(
    server: RedisServer, url: str, make_store: StoreMaker
) -> tuple[int, dict[str, int], dict[str, int]]:
    """Round trips, commands and error replies of one ``cache_get_all`` on a new store."""
    writer = make_store(url)
    await writer.cache_set_all([record("env:a", 2), record("filter:b", 4)], False)
    await writer.cache_close()
    with server.client() as client:
        client.ping()  # connected before counting: its own set-up is not counted
        client.config_resetstat()

        def reads() -> int:
            return int(client.info("stats")["total_reads_processed"])

        first = reads()
        before = reads()
        own = before - first  # each INFO is one read of this client's
        store = make_store(url)
        assert len(await store.cache_get_all()) == 2
        round_trips = reads() - before - own
        await store.cache_close()
        commands = {
            name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in client.info("commandstats").items()
            if name not in ("cmdstat_info", "cmdstat_config|resetstat")
        }
        errors = {name: int(stats["count"]) for name, stats in client.info("errorstats").items()}
    return round_trips, commands, errors


async def test_a_cold_get_all_is_one_round_trip_with_no_connection_set_up_command(
    private_server: RedisServer, make_store: StoreMaker
) -> None:
    # redis-py 8 would open the connection with HELLO 3 and CLIENT SETINFO (two round trips,
    # and two error replies from servers before 7.2): the store asks for neither.
    round_trips, commands, errors = await cold_read(private_server, private_server.url, make_store)
    assert commands == TRANSACTION
    assert errors == {}
    assert round_trips == 1


async def test_with_a_password_a_cold_get_all_is_auth_then_the_transaction(
    password_server: RedisServer, make_store: StoreMaker
) -> None:
    server = password_server
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}"
    round_trips, commands, errors = await cold_read(server, url, make_store)
    assert commands == {"auth": 1, **TRANSACTION}
    assert errors == {}
    assert round_trips == 2


async def test_records_keep_their_versions_whatever_their_field_names(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    # The common case (ASCII name, decimal version) is built inline; the rest goes through the
    # general rules, which must give the same answer for a UTF-8 name and refuse a non-UTF-8 one
    # even when its versions entry is a valid number.
    store = make_store(redis_server.url)
    written = [record("env:plain", 2), record("env:é-ü", 4), record("filter:日本", 6)]
    await store.cache_set_all(written, False)
    with redis_server.client() as client:
        client.hset(cache_key, b"env:\xff\xfe", b"\x00")
        client.hset(versions_key(cache_key), b"env:\xff\xfe", "8")
    records = await store.cache_get_all()
    assert as_map([r for r in records if r.problem is None]) == as_map(written)
    [foreign] = [r for r in records if r.problem is not None]
    assert foreign.field == "<field not UTF-8: b'env:\\xff\\xfe'>"
    assert foreign.problem is not None and "not UTF-8" in foreign.problem
    assert foreign.version == 0
    await store.cache_close()
