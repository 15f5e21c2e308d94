"""Outages for real: a SIGKILLed and restarted server, a SIGSTOPped (hung) server, a server
that is not there yet. Operations fail with a typed error within the configured timeout (the
test run's timeout guards against a hang; no timing is asserted) and succeed after recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from autoconfig_cache.errors import StoreClosedError, StoreTimeoutError, StoreUnavailableError
from autoconfig_cache.records import StoredRecord
from tests.redis.conftest import StoreMaker
from tests.redis.servers import RedisServer

pytestmark = pytest.mark.timeout(60)


def rec(field: str, version: int) -> StoredRecord:
    return StoredRecord(field, version, f"{field}@{version}".encode())


async def test_killed_server_gives_unavailable_then_recovers_after_restart(
    private_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(private_server.url, timeout="2")
    assert await store.cache_upsert(rec("env:a", 1)) is True
    private_server.kill()
    with pytest.raises(StoreUnavailableError):
        await store.cache_get_all()
    with pytest.raises(StoreUnavailableError):
        await store.cache_upsert(rec("env:a", 2))
    private_server.start()  # same port, empty (no persistence)
    assert await store.cache_upsert(rec("env:a", 2)) is True
    assert [(r.field, r.version) for r in await store.cache_get_all()] == [("env:a", 2)]
    await store.cache_close()


async def test_restart_between_operations_is_absorbed_by_the_retry(
    private_server: RedisServer, make_store: StoreMaker
) -> None:
    # The pooled connection is dead after the restart; one immediate retry on a new connection
    # (the default retries=1) hides that from the caller.
    store = make_store(private_server.url)
    await store.cache_upsert(rec("env:a", 1))
    private_server.restart()
    assert await store.cache_upsert(rec("env:a", 1)) is True
    await store.cache_close()


async def test_hung_server_times_out_with_a_typed_error_then_recovers(
    private_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(private_server.url, timeout="1")
    await store.cache_upsert(rec("env:a", 1))
    private_server.pause()
    try:
        with pytest.raises(StoreTimeoutError, match="timeout"):
            await store.cache_get_all()
        with pytest.raises(StoreTimeoutError):
            await store.cache_set_all([rec("env:a", 2)], False)
        fresh = make_store(private_server.url, timeout="1")  # a new connection hangs too
        with pytest.raises(StoreTimeoutError):
            await fresh.cache_upsert(rec("env:b", 1))
        await fresh.cache_close()
    finally:
        private_server.resume()
    await store.cache_set_all([rec("env:a", 2)], False)
    assert [(r.field, r.version) for r in await store.cache_get_all()] == [("env:a", 2)]
    await store.cache_close()


async def test_close_cancels_an_operation_stuck_on_a_hung_server(
    private_server: RedisServer, make_store: StoreMaker
) -> None:
    store = make_store(private_server.url, timeout="30")
    await store.cache_upsert(rec("env:a", 1))
    private_server.pause()
    try:
        stuck = asyncio.create_task(store.cache_get_all())
        await asyncio.sleep(0.2)
        assert not stuck.done()
        await store.cache_close()
        with pytest.raises(StoreClosedError):
            await stuck
    finally:
        private_server.resume()
    with pytest.raises(StoreClosedError):
        await store.cache_get_all()


async def test_server_absent_at_start_up_then_started(
    tmp_path: Path, make_store: StoreMaker
) -> None:
    server = RedisServer(tmp_path / "late")
    store = make_store(server.url, timeout="2")
    with pytest.raises(StoreUnavailableError):
        await store.cache_get_all()
    server.start()
    try:
        assert await store.cache_get_all() == []
        assert await store.cache_upsert(rec("env:a", 1)) is True
    finally:
        await store.cache_close()
        server.kill()
