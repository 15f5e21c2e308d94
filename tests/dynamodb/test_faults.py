"""Outages simulated for real: an emulator SIGSTOPped (hung) or SIGKILLed (gone) mid-operation.

Each test runs its own server (moto, then dynalite). The faults are triggered from inside the
store's request path (a wrapper around PynamoDB's ``dispatch``) so that they hit an operation in
flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from autoconfig_cache.errors import (
    StoreClosedError,
    StoreSchemaError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_dynamodb import DynamoDBStore
from tests.services import free_port

from .conftest import REGION, TABLE, EmulatorServer
from .helpers import DispatchRecorder, as_dict, record

#: Only so that a hanging store fails the test instead of blocking the run; not a timing check.
HANG_GUARD = 60.0

FAST_FAILING = {
    "connect_timeout": "1",
    "read_timeout": "1",
    "max_retry_attempts": "1",
    "timeout": "20",
}


@pytest.fixture
async def open_store() -> AsyncIterator[Callable[..., DynamoDBStore]]:
    stores: list[DynamoDBStore] = []

    def make(endpoint: str, cache_key: str = "faults", **options: str) -> DynamoDBStore:
        store = DynamoDBStore.from_spec(
            StoreSpec(
                url=f"dynamodb://{TABLE}?region={REGION}&endpoint={endpoint}",
                cache_key=cache_key,
                options={**FAST_FAILING, **options},
            )
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.cache_close()


def on_nth(operation: str, n: int, action: Callable[[], None]) -> Any:
    """An intercept that runs ``action`` just before the ``n``-th ``operation`` is sent."""
    seen = 0

    def intercept(original: Any, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        nonlocal seen
        if name == operation:
            seen += 1
            if seen == n:
                action()
        result: dict[str, Any] = original(name, kwargs)
        return result

    return intercept


@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_hung_server_mid_set_all_raises_a_timeout_error(
    private_server: EmulatorServer, open_store: Callable[..., DynamoDBStore], write_mode: str
) -> None:
    store = open_store(private_server.endpoint, write_mode=write_mode)
    operation = "PutItem" if write_mode == "conditional" else "BatchWriteItem"
    DispatchRecorder(store, on_nth(operation, 3, private_server.pause))
    records = [record(f"env:e{i}", 1) for i in range(200)]
    with pytest.raises(StoreTimeoutError, match="timed out"):
        await asyncio.wait_for(store.cache_set_all(records, False), HANG_GUARD)


async def test_hung_server_mid_get_all_raises_a_timeout_error(
    private_server: EmulatorServer, open_store: Callable[..., DynamoDBStore]
) -> None:
    store = open_store(private_server.endpoint)
    await store.cache_set_all([record(f"env:e{i}", 1) for i in range(5)], False)
    DispatchRecorder(store, on_nth("Query", 1, private_server.pause))
    with pytest.raises(StoreTimeoutError):
        await asyncio.wait_for(store.cache_get_all(), HANG_GUARD)


async def test_store_recovers_after_a_hung_server_resumes(
    private_server: EmulatorServer, open_store: Callable[..., DynamoDBStore]
) -> None:
    store = open_store(private_server.endpoint)
    records = [record(f"env:e{i}", 1) for i in range(5)]
    await store.cache_set_all(records, False)
    private_server.pause()
    with pytest.raises(StoreTimeoutError):
        await asyncio.wait_for(store.cache_get_all(), HANG_GUARD)
    private_server.resume()
    assert as_dict(await store.cache_get_all()) == as_dict(records)


@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_killed_server_mid_set_all_raises_unavailable_then_works_after_restart(
    private_server: EmulatorServer, open_store: Callable[..., DynamoDBStore], write_mode: str
) -> None:
    store = open_store(private_server.endpoint, write_mode=write_mode)
    operation = "PutItem" if write_mode == "conditional" else "BatchWriteItem"
    DispatchRecorder(store, on_nth(operation, 3, private_server.kill))
    records = [record(f"env:e{i}", 1) for i in range(200)]
    with pytest.raises(StoreUnavailableError):
        await asyncio.wait_for(store.cache_set_all(records, False), HANG_GUARD)

    private_server.start()  # same port; the emulator kept data in memory: the table is gone
    with pytest.raises(StoreSchemaError, match="create-table"):
        await asyncio.wait_for(store.cache_get_all(), HANG_GUARD)
    await store.cache_create_storage()
    await store.cache_set_all(records, False)
    assert as_dict(await store.cache_get_all()) == as_dict(records)


async def test_create_table_option_recreates_the_table_after_a_restart(
    private_server: EmulatorServer, open_store: Callable[..., DynamoDBStore]
) -> None:
    store = open_store(private_server.endpoint, create_table="true")
    await store.cache_upsert(record("env:a", 1))
    private_server.kill()
    with pytest.raises(StoreUnavailableError):
        await asyncio.wait_for(store.cache_upsert(record("env:a", 2)), HANG_GUARD)
    private_server.start()
    newer = record("env:a", 2)
    with pytest.raises(StoreSchemaError):
        # The first request after the restart finds no table; that error resets the check...
        await asyncio.wait_for(store.cache_upsert(newer), HANG_GUARD)
    # ...so the next operation describes the table again and creates it.
    assert await store.cache_upsert(newer) is True
    assert as_dict(await store.cache_get_all()) == as_dict([newer])


async def test_unreachable_endpoint_raises_unavailable(
    open_store: Callable[..., DynamoDBStore],
) -> None:
    store = open_store(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(StoreUnavailableError, match="could not reach"):
        await asyncio.wait_for(store.cache_get_all(), HANG_GUARD)


async def test_operation_deadline_bounds_a_slow_operation(
    private_server: EmulatorServer, open_store: Callable[..., DynamoDBStore]
) -> None:
    # The item is written with the usual deadline: a cold emulator may take longer than 1 s to
    # answer a first write, and only the read below is under test.
    await open_store(private_server.endpoint).cache_upsert(record("env:a", 1))
    # Generous socket timeouts but a short overall deadline: the deadline decides.
    store = open_store(private_server.endpoint, read_timeout="30", timeout="1")
    private_server.pause()
    with pytest.raises(StoreTimeoutError, match="store option timeout"):
        await asyncio.wait_for(store.cache_get_all(), HANG_GUARD)


async def test_close_stops_an_operation_waiting_on_a_hung_server(
    private_server: EmulatorServer, open_store: Callable[..., DynamoDBStore]
) -> None:
    # The read timeout is far longer than the guard: only close() can end the operation.
    store = open_store(private_server.endpoint, read_timeout="600", timeout="600")
    await store.cache_upsert(record("env:a", 1))
    started = asyncio.Event()

    def pause_and_signal() -> None:
        private_server.pause()
        loop.call_soon_threadsafe(started.set)

    loop = asyncio.get_running_loop()
    DispatchRecorder(store, on_nth("Query", 1, pause_and_signal))
    task = asyncio.create_task(store.cache_get_all())
    await asyncio.wait_for(started.wait(), HANG_GUARD)
    await asyncio.wait_for(store.cache_close(), HANG_GUARD)
    done, _ = await asyncio.wait({task}, timeout=HANG_GUARD)
    assert task in done, "get_all was still running after close()"
    assert isinstance(task.exception(), StoreClosedError)
