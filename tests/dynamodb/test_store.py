"""Behaviour of the DynamoDB store against each real emulator (moto, dynalite)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from autoconfig_cache.errors import (
    ConfigurationError,
    PartialWriteError,
    StoreClosedError,
    StoreSchemaError,
)
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_dynamodb import MAX_ITEM_SIZE, DynamoDBSettings, DynamoDBStore
from autoconfig_cache_dynamodb.store import item_size

from .conftest import TABLE, EmulatorServer, StoreMaker
from .helpers import DispatchRecorder, UncheckedStore, as_dict, record

# ---------------------------------------------------------------------------------------------
# Reading and writing
# ---------------------------------------------------------------------------------------------


async def test_get_all_of_an_unused_cache_key_is_empty(make_store: StoreMaker) -> None:
    assert await make_store().cache_get_all() == []


async def test_set_all_then_get_all_returns_exactly_the_records(make_store: StoreMaker) -> None:
    store = make_store()
    records = [record(f"env:e{i}", i + 1) for i in range(30)] + [record("filter:f1", 7)]
    await store.cache_set_all(records, False)
    assert as_dict(await store.cache_get_all()) == as_dict(records)


async def test_get_all_follows_query_pages(make_store: StoreMaker) -> None:
    store = make_store()
    records = [record(f"env:e{i:03}", 1) for i in range(23)]
    await store.cache_set_all(records, False)

    def small_pages(original: Any, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if operation == "Query":
            kwargs["Limit"] = 5  # make the real server paginate
        result: dict[str, Any] = original(operation, kwargs)
        return result

    recorder = DispatchRecorder(store, small_pages)
    assert as_dict(await store.cache_get_all()) == as_dict(records)
    assert recorder.count("Query") == 5
    assert all(kwargs.get("ConsistentRead") for _, kwargs in recorder.calls)


async def test_set_all_writes_only_the_changed_record(make_store: StoreMaker) -> None:
    store = make_store()
    records = [record(f"env:e{i}", 1) for i in range(60)]
    await store.cache_set_all(records, False)
    recorder = DispatchRecorder(store)
    records[17] = record("env:e17", 2)
    await store.cache_set_all(records, False)
    assert recorder.write_requests() == 1
    assert recorder.items_written() == 1
    assert as_dict(await store.cache_get_all()) == as_dict(records)


async def test_set_all_reads_only_keys_and_versions_to_diff(make_store: StoreMaker) -> None:
    store = make_store()
    await store.cache_set_all([record("env:a", 1)], False)
    recorder = DispatchRecorder(store)
    await store.cache_set_all([record("env:a", 1)], False)
    queries = [kwargs for name, kwargs in recorder.calls if name == "Query"]
    assert queries and all("ProjectionExpression" in q for q in queries)
    assert recorder.write_requests() == 0


async def test_set_all_deletes_only_fields_that_disappeared(make_store: StoreMaker) -> None:
    store = make_store()
    records = [record(f"env:e{i}", 1) for i in range(10)]
    await store.cache_set_all(records, False)
    recorder = DispatchRecorder(store)
    await store.cache_set_all(records[1:], False)
    assert recorder.items_written() == 1
    assert as_dict(await store.cache_get_all()) == as_dict(records[1:])


async def test_set_all_never_replaces_a_newer_stored_version(make_store: StoreMaker) -> None:
    store = make_store()
    newer = record("env:a", 5)
    await make_store().cache_set_all([newer], False)
    await store.cache_set_all([record("env:a", 3)], False)
    assert as_dict(await store.cache_get_all()) == as_dict([newer])


@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_rewrite_unchanged_rewrites_equal_versions_only(
    make_store: StoreMaker, write_mode: str
) -> None:
    store = make_store(write_mode=write_mode)
    await store.cache_set_all([record("env:same", 4), record("env:newer", 9)], False)
    rewritten = [record("env:same", 4), record("env:newer", 8)]
    await store.cache_set_all(rewritten, True)
    stored = as_dict(await store.cache_get_all())
    assert stored["env:same"] == (4, rewritten[0].blob)
    assert stored["env:newer"][0] == 9


async def test_equal_version_is_left_alone_without_rewrite_unchanged(
    make_store: StoreMaker,
) -> None:
    store = make_store()
    first = record("env:a", 4)
    await store.cache_set_all([first], False)
    await store.cache_set_all([record("env:a", 4)], False)
    assert as_dict(await store.cache_get_all()) == as_dict([first])


async def test_batch_mode_writes_in_chunks_of_25(make_store: StoreMaker) -> None:
    store = make_store(write_mode="batch")
    recorder = DispatchRecorder(store)
    records = [record(f"env:e{i}", 1) for i in range(60)]
    await store.cache_set_all(records, False)
    sizes = [
        len(kwargs["RequestItems"][TABLE])
        for name, kwargs in recorder.calls
        if name == "BatchWriteItem"
    ]
    assert sorted(sizes) == [10, 25, 25]
    assert as_dict(await store.cache_get_all()) == as_dict(records)


async def test_batch_mode_writes_only_what_changed(make_store: StoreMaker) -> None:
    store = make_store(write_mode="batch")
    records = [record(f"env:e{i}", 1) for i in range(60)]
    await store.cache_set_all(records, False)
    recorder = DispatchRecorder(store)
    records[3] = record("env:e3", 2)
    await store.cache_set_all(records[:-1], False)
    assert recorder.write_requests() == 1
    assert recorder.items_written() == 2  # one put, one delete
    assert as_dict(await store.cache_get_all()) == as_dict(records[:-1])


# ---------------------------------------------------------------------------------------------
# Single-item writes
# ---------------------------------------------------------------------------------------------


async def test_upsert_writes_an_absent_record(make_store: StoreMaker) -> None:
    store = make_store()
    item = record("env:a", 1)
    assert await store.cache_upsert(item) is True
    assert as_dict(await store.cache_get_all()) == as_dict([item])


async def test_upsert_replaces_a_lower_version(make_store: StoreMaker) -> None:
    store = make_store()
    await store.cache_upsert(record("env:a", 1))
    newer = record("env:a", 2)
    assert await store.cache_upsert(newer) is True
    assert as_dict(await store.cache_get_all()) == as_dict([newer])


@pytest.mark.parametrize("offered", [3, 2])
async def test_upsert_refuses_the_same_or_an_older_version(
    make_store: StoreMaker, offered: int
) -> None:
    store = make_store()
    stored = record("env:a", 3)
    await store.cache_upsert(stored)
    assert await store.cache_upsert(record("env:a", offered)) is False
    assert as_dict(await store.cache_get_all()) == as_dict([stored])


async def test_delete_removes_a_lower_version(make_store: StoreMaker) -> None:
    store = make_store()
    await store.cache_upsert(record("env:a", 1))
    assert await store.cache_delete("env:a", 2) is True
    assert await store.cache_get_all() == []


@pytest.mark.parametrize("delete_version", [5, 4])
async def test_delete_keeps_the_same_or_a_newer_version(
    make_store: StoreMaker, delete_version: int
) -> None:
    store = make_store()
    stored = record("env:a", 5)
    await store.cache_upsert(stored)
    assert await store.cache_delete("env:a", delete_version) is False
    assert as_dict(await store.cache_get_all()) == as_dict([stored])


async def test_delete_of_an_absent_field_returns_false(make_store: StoreMaker) -> None:
    assert await make_store().cache_delete("env:nothing", 3) is False


async def test_clear_removes_only_this_cache_key(make_store: StoreMaker) -> None:
    store = make_store()
    other = make_store(cache_key=f"other-{uuid.uuid4().hex}")
    await store.cache_set_all([record(f"env:e{i}", 1) for i in range(40)], False)
    kept = [record("env:x", 1)]
    await other.cache_set_all(kept, False)
    await store.cache_clear()
    assert await store.cache_get_all() == []
    assert as_dict(await other.cache_get_all()) == as_dict(kept)


# ---------------------------------------------------------------------------------------------
# Items written by a Relay Proxy (no version attribute)
# ---------------------------------------------------------------------------------------------


async def test_item_without_version_reads_as_version_zero(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str
) -> None:
    server.client().put_item(
        TableName=TABLE,
        Item={"namespace": {"S": cache_key}, "key": {"S": "env:r"}, "item": {"B": b"relay"}},
    )
    assert await make_store().cache_get_all() == [StoredRecord("env:r", 0, b"relay")]


async def test_upsert_replaces_an_item_without_version(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str
) -> None:
    server.client().put_item(
        TableName=TABLE,
        Item={"namespace": {"S": cache_key}, "key": {"S": "env:r"}, "item": {"B": b"relay"}},
    )
    store = make_store()
    assert await store.cache_upsert(StoredRecord("env:r", 1, b"ours")) is True
    assert await store.cache_get_all() == [StoredRecord("env:r", 1, b"ours")]


# ---------------------------------------------------------------------------------------------
# Size guard
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_oversize_item_is_refused_by_name_and_the_rest_written(
    make_store: StoreMaker, write_mode: str
) -> None:
    store = make_store(write_mode=write_mode)
    fine = [record(f"env:e{i}", 1) for i in range(5)]
    huge = record("env:huge", 1, size=MAX_ITEM_SIZE + 1)
    with pytest.raises(PartialWriteError) as raised:
        await store.cache_set_all([*fine[:2], huge, *fine[2:]], False)
    assert as_dict(await store.cache_get_all()) == as_dict(fine)
    [refused] = raised.value.refused
    assert (refused.field, refused.version) == ("env:huge", 1)
    assert "400" in refused.reason and str(MAX_ITEM_SIZE) in refused.reason
    assert raised.value.only_refused


async def test_oversize_upsert_is_refused_without_a_request(make_store: StoreMaker) -> None:
    store = make_store()
    recorder = DispatchRecorder(store)
    with pytest.raises(PartialWriteError) as raised:
        await store.cache_upsert(record("env:huge", 1, size=MAX_ITEM_SIZE))
    assert [entry.field for entry in raised.value.refused] == ["env:huge"]
    assert recorder.write_requests() == 0
    assert await store.cache_get_all() == []


def sized_record(field: str, cache_key: str, total: int) -> StoredRecord:
    """A version-1 record whose row is ``total`` bytes as DynamoDB counts an item's size."""
    return record(field, 1, size=total - item_size(cache_key, field, b"", 1))


@pytest.mark.emulator_deviation(
    "moto", reason="moto refuses an item over 405,000 bytes, short of DynamoDB's 409,600"
)
@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_an_item_of_exactly_400_kb_is_written(
    make_store: StoreMaker, cache_key: str, write_mode: str
) -> None:
    # DynamoDB's item limit is 400 KB, 1 KB being 1,024 bytes: 409,600 bytes of attribute names
    # and values ("Items" in
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html; what
    # each attribute counts for: .../developerguide/CapacityUnitCalculations.html). The store's
    # own check lets such an item through, so DynamoDB must take it.
    store = make_store(write_mode=write_mode)
    largest = sized_record("env:max", cache_key, 409_600)
    await store.cache_set_all([largest], False)
    assert as_dict(await store.cache_get_all()) == as_dict([largest])


async def test_dynamodb_itself_refuses_an_item_one_byte_over_400_kb(
    make_store: StoreMaker, cache_key: str
) -> None:
    # The other side of the limit: the server agrees with the store's own check, which refuses
    # this record before sending it (test_oversize_upsert_is_refused_without_a_request).
    store = make_store()
    unchecked = UncheckedStore(store.settings)
    try:
        with pytest.raises(PartialWriteError) as raised:
            await unchecked.cache_upsert(sized_record("env:over", cache_key, 409_601))
        [refused] = raised.value.refused
        assert refused.field == "env:over" and "DynamoDB refused it" in refused.reason
        assert await store.cache_get_all() == []
    finally:
        await unchecked.cache_close()


# ---------------------------------------------------------------------------------------------
# Many writers
# ---------------------------------------------------------------------------------------------


async def test_concurrent_writers_leave_the_highest_version_of_each_item(
    make_store: StoreMaker,
) -> None:
    writers = [make_store() for _ in range(4)]
    fields = [f"env:e{i}" for i in range(8)]
    blobs = {(f, v): f"{f}@{v}".encode() for f in fields for v in range(1, 13)}

    async def writer(index: int) -> None:
        store = writers[index]
        # Each writer offers the versions in a different order, mixing the three write paths.
        versions = list(range(1, 13))[index::2] + list(range(1, 13))[::-1][index::3]
        for version in versions:
            snapshot = [StoredRecord(f, version, blobs[(f, version)]) for f in fields]
            if version % 3 == 0:
                await store.cache_set_all(snapshot, False)
            else:
                await asyncio.gather(*(store.cache_upsert(r) for r in snapshot))

    await asyncio.gather(*(writer(i) for i in range(4)))
    highest = max(
        v for i in range(4) for v in list(range(1, 13))[i::2] + list(range(1, 13))[::-1][i::3]
    )
    stored = as_dict(await writers[0].cache_get_all())
    assert stored == {f: (highest, blobs[(f, highest)]) for f in fields}


# ---------------------------------------------------------------------------------------------
# Table management and schema errors
# ---------------------------------------------------------------------------------------------


async def test_missing_table_is_a_schema_error_naming_the_fix(make_store: StoreMaker) -> None:
    store = make_store(table=f"missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(StoreSchemaError, match="create-table"):
        await store.cache_get_all()


async def test_wrong_key_schema_is_a_schema_error_naming_the_expected_one(
    make_store: StoreMaker, server: EmulatorServer
) -> None:
    name = f"wrong-{uuid.uuid4().hex[:8]}"
    server.client().create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    store = make_store(table=name)
    with pytest.raises(StoreSchemaError, match=r"expected partition key 'namespace'"):
        await store.cache_upsert(record("env:a", 1))


async def test_create_storage_creates_an_on_demand_table(
    make_store: StoreMaker, server: EmulatorServer
) -> None:
    name = f"created-{uuid.uuid4().hex[:8]}"
    store = make_store(table=name)
    assert await store.cache_create_storage() is True  # `create-table` says "created"
    description = server.client().describe_table(TableName=name)["Table"]
    assert description["TableStatus"] == "ACTIVE"
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in description["KeySchema"]} == {
        "namespace": "HASH",
        "key": "RANGE",
    }
    item = record("env:a", 1)
    await store.cache_upsert(item)
    assert as_dict(await store.cache_get_all()) == as_dict([item])


async def test_create_storage_on_an_existing_table_changes_nothing(
    make_store: StoreMaker,
) -> None:
    store = make_store()
    item = record("env:a", 1)
    await store.cache_upsert(item)
    assert await store.cache_create_storage() is None  # `create-table` says "already exists"
    assert as_dict(await store.cache_get_all()) == as_dict([item])


async def test_create_table_option_creates_the_table_on_first_use(
    make_store: StoreMaker, server: EmulatorServer
) -> None:
    name = f"auto-{uuid.uuid4().hex[:8]}"
    store = make_store(table=name, create_table="true")
    assert await store.cache_get_all() == []
    assert server.client().describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"


# ---------------------------------------------------------------------------------------------
# Closing
# ---------------------------------------------------------------------------------------------


async def test_every_operation_after_close_raises_store_closed(make_store: StoreMaker) -> None:
    store = make_store()
    await store.cache_upsert(record("env:a", 1))
    await store.cache_close()
    await store.cache_close()  # closing twice is harmless
    operations = [
        store.cache_get_all(),
        store.cache_set_all([record("env:a", 2)], False),
        store.cache_upsert(record("env:a", 2)),
        store.cache_delete("env:a", 2),
        store.cache_clear(),
        store.cache_create_storage(),
    ]
    for operation in operations:
        with pytest.raises(StoreClosedError):
            await operation


# ---------------------------------------------------------------------------------------------
# Configuration and registration
# ---------------------------------------------------------------------------------------------


def test_url_and_options_are_parsed() -> None:
    spec = StoreSpec(
        url="dynamodb://my-table?region=eu-west-1&endpoint=http://127.0.0.1:1&read_timeout=1.5",
        cache_key="ns",
        options={"write_mode": "batch", "read_timeout": "3", "create_table": "yes"},
    )
    settings = DynamoDBSettings.from_spec(spec)
    assert (settings.table, settings.region, settings.endpoint) == (
        "my-table",
        "eu-west-1",
        "http://127.0.0.1:1",
    )
    assert settings.read_timeout == 3.0  # options win over the URL
    assert settings.write_mode == "batch"
    assert settings.create_table is True
    assert settings.billing_mode == "PAY_PER_REQUEST"


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("dynamodb://", {}, "names no table"),
        ("dynamodb://t", {"read_timeout": "soon"}, "read_timeout"),
        ("dynamodb://t", {"write_mode": "yolo"}, "write_mode"),
        ("dynamodb://t", {"billing_mode": "free"}, "billing_mode"),
        ("dynamodb://t", {"create_table": "maybe"}, "create_table"),
    ],
)
def test_bad_settings_are_configuration_errors(
    url: str, options: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DynamoDBSettings.from_spec(StoreSpec(url=url, cache_key="ns", options=options))


async def test_the_factory_does_not_connect() -> None:
    # An endpoint nothing listens on: building the store must neither fail nor block.
    store = DynamoDBStore.from_spec(
        StoreSpec(url="dynamodb://t?region=us-east-1&endpoint=http://127.0.0.1:9", cache_key="k")
    )
    assert store.connection._client is None
    await store.cache_close()


def test_the_dynamodb_scheme_is_registered_through_the_entry_point() -> None:
    registry = PluginRegistry()
    assert "dynamodb" in registry.stores
    store = registry.open_store(
        StoreSpec(url="dynamodb://t?region=us-east-1&endpoint=http://127.0.0.1:9", cache_key="k")
    )
    assert isinstance(store, DynamoDBStore)


def test_unknown_option_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = DynamoDBSettings.from_spec(
            StoreSpec(url="dynamodb://t?region=us-east-1", cache_key="ns", options={"raed": "1"})
        )
    assert settings.read_timeout == 5.0
    assert any("raed" in r.getMessage() for r in caplog.records)
