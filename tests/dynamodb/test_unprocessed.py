"""UnprocessedItems of BatchWriteItem and per-item failures reach the caller.

A wrapper around the store's PynamoDB ``dispatch`` holds back part of each BatchWriteItem: the
rest is sent to the real emulator, and the held-back requests come back as
``UnprocessedItems``, exactly as DynamoDB answers when it throttles a batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autoconfig_cache.errors import PartialWriteError

from .conftest import TABLE, StoreMaker
from .helpers import DispatchRecorder, as_dict, record


def _field(request: dict[str, Any]) -> str:
    body = request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
    return str(body["key"]["S"])


def hold_back(
    should_hold: Callable[[str], bool], held: list[str]
) -> Callable[[Any, str, dict[str, Any]], dict[str, Any]]:
    """An intercept that returns the requests ``should_hold`` picks as UnprocessedItems."""

    def intercept(original: Any, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if operation != "BatchWriteItem":
            result: dict[str, Any] = original(operation, kwargs)
            return result
        requests = kwargs["RequestItems"][TABLE]
        decisions = [(r, should_hold(_field(r))) for r in requests]  # one draw per request
        kept = [r for r, hold in decisions if not hold]
        unprocessed = [r for r, hold in decisions if hold]
        held.extend(_field(r) for r in unprocessed)
        response: dict[str, Any] = {}
        if kept:
            response = original(operation, {**kwargs, "RequestItems": {TABLE: kept}})
        response["UnprocessedItems"] = {TABLE: unprocessed} if unprocessed else {}
        return response

    return intercept


def randomly(share: float, seed: int) -> Callable[[str], bool]:
    rng = random.Random(seed)
    return lambda _field: rng.random() < share


def always(fields: Collection[str]) -> Callable[[str], bool]:
    return lambda field: field in fields


async def test_unprocessed_items_are_retried_until_all_land(make_store: StoreMaker) -> None:
    store = make_store(write_mode="batch", base_backoff_ms=1, max_backoff_ms=20)
    held: list[str] = []
    recorder = DispatchRecorder(store, hold_back(randomly(0.3, seed=7), held))
    records = [record(f"env:e{i:03}", 1) for i in range(200)]
    await store.cache_set_all(records, False)
    assert len(held) > 30  # the injection did hold back a good share
    assert recorder.count("BatchWriteItem") > 200 // 25
    assert as_dict(await store.cache_get_all()) == as_dict(records)


async def test_unprocessed_deletes_are_retried_until_all_land(make_store: StoreMaker) -> None:
    store = make_store(base_backoff_ms=1, max_backoff_ms=20)
    await store.cache_set_all([record(f"env:e{i:03}", 1) for i in range(120)], False)
    held: list[str] = []
    DispatchRecorder(store, hold_back(randomly(0.3, seed=11), held))
    await store.cache_clear()
    assert held
    assert await store.cache_get_all() == []


async def test_permanently_unprocessed_items_are_named_in_partial_write_error(
    make_store: StoreMaker,
) -> None:
    store = make_store(
        write_mode="batch", base_backoff_ms=1, max_backoff_ms=10, unprocessed_retry_timeout=0.3
    )
    stuck = {"env:e007", "env:e042", "filter:f1"}
    records = [record(f"env:e{i:03}", 1) for i in range(60)] + [record("filter:f1", 1)]
    DispatchRecorder(store, hold_back(always(stuck), []))
    with pytest.raises(PartialWriteError) as raised:
        await store.cache_set_all(records, False)
    assert sorted(raised.value.failed_fields) == sorted(stuck)
    # Everything else was written.
    expected = [r for r in records if r.field not in stuck]
    assert as_dict(await store.cache_get_all()) == as_dict(expected)


async def test_failed_conditional_writes_are_named_in_partial_write_error(
    make_store: StoreMaker,
) -> None:
    store = make_store()
    broken = {"env:e3", "env:e8"}

    def refuse(original: Any, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if operation == "PutItem" and kwargs["Item"]["key"]["S"] in broken:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "injected"}}, operation
            )
        result: dict[str, Any] = original(operation, kwargs)
        return result

    DispatchRecorder(store, refuse)
    records = [record(f"env:e{i}", 1) for i in range(10)]
    with pytest.raises(PartialWriteError) as raised:
        await store.cache_set_all(records, False)
    assert sorted(raised.value.failed_fields) == sorted(broken)
    expected = [r for r in records if r.field not in broken]
    assert as_dict(await store.cache_get_all()) == as_dict(expected)
