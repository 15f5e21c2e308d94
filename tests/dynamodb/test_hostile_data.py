"""The DynamoDB store against records it cannot hold and rows another program wrote.

A real emulator (moto, then dynalite). Rows are written directly with boto3, as another program or a bug would,
then read and written through the store and the cache facade.
"""

from __future__ import annotations

from typing import Any

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.errors import PartialWriteError
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.report import SkipReason
from autoconfig_cache.testing import as_map
from autoconfig_cache.testing import record as kit_record
from autoconfig_cache_dynamodb import DynamoDBStore
from autoconfig_cache_dynamodb.store import MAX_SORT_KEY_BYTES
from tests.items import env_json

from .conftest import TABLE, EmulatorServer, StoreMaker
from .helpers import DispatchRecorder, UncheckedStore, as_dict, record

LONG_FIELD = "env:" + "k" * MAX_SORT_KEY_BYTES


def make_cache(store: DynamoDBStore, cache_key: str) -> AutoConfigCache:
    return AutoConfigCache(store, cache_key=cache_key, keys=KeyRing.from_strings("dynamo-hostile"))


def snapshot_of(*env_ids: str, version: int = 1) -> Snapshot:
    return Snapshot(
        {env_id: Environment.from_json(env_json(env_id, version)) for env_id in env_ids}, {}
    )


def put_row(server: EmulatorServer, cache_key: str, field: str, **attributes: Any) -> None:
    """Write one row as another program would, bypassing the store."""
    server.client().put_item(
        TableName=TABLE,
        Item={"namespace": {"S": cache_key}, "key": {"S": field}, **attributes},
    )


def set_version(server: EmulatorServer, cache_key: str, field: str, value: dict[str, str]) -> None:
    server.client().update_item(
        TableName=TABLE,
        Key={"namespace": {"S": cache_key}, "key": {"S": field}},
        UpdateExpression="SET version = :v",
        ExpressionAttributeValues={":v": value},
    )


# ---------------------------------------------------------------------------------------------
# records the store cannot hold
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_a_field_over_the_sort_key_limit_is_refused_and_the_rest_written(
    make_store: StoreMaker, write_mode: str
) -> None:
    # DynamoDB refuses such a key (ValidationException): in conditional mode that was a failed
    # field like a throttled one, retried by every re-sync; in batch mode it failed its chunk.
    store = make_store(write_mode=write_mode)
    good = [record(f"env:e{i}", 1) for i in range(30)]
    recorder = DispatchRecorder(store)
    with pytest.raises(PartialWriteError) as raised:
        await store.cache_set_all([*good[:10], record(LONG_FIELD, 1), *good[10:]], False)
    assert as_dict(await store.cache_get_all()) == as_dict(good)
    [refused] = raised.value.refused
    assert refused.field == LONG_FIELD and "1024-byte sort key" in refused.reason
    assert raised.value.only_refused
    sent = str(recorder.calls)
    assert "k" * MAX_SORT_KEY_BYTES not in sent  # refused before sending: no request for it


async def test_a_record_dynamodb_itself_refuses_as_invalid_is_refused_alone(
    server: EmulatorServer, make_store: StoreMaker, cache_key: str
) -> None:
    store = make_store()
    unchecked = UncheckedStore(store.settings)
    try:
        good = [record("env:a", 1), record("env:b", 1)]
        with pytest.raises(PartialWriteError) as raised:
            await unchecked.cache_set_all([good[0], record(LONG_FIELD, 1), good[1]], False)
        [refused] = raised.value.refused
        assert refused.field == LONG_FIELD and "DynamoDB refused it" in refused.reason
        assert raised.value.only_refused
        assert as_dict(await store.cache_get_all()) == as_dict(good)
        with pytest.raises(PartialWriteError) as raised_upsert:
            await unchecked.cache_upsert(record(LONG_FIELD, 2))
        assert [entry.field for entry in raised_upsert.value.refused] == [LONG_FIELD]
    finally:
        await unchecked.cache_close()


@pytest.mark.emulator_deviation(
    "moto",
    reason="moto writes a BatchWriteItem that holds a sort key over 1,024 bytes, key and all",
)
async def test_a_batch_dynamodb_rejects_whole_is_reported_unwritten_item_by_item(
    make_store: StoreMaker,
) -> None:
    # DynamoDB rejects the entire BatchWriteItem when one item's key exceeds the key length
    # limits (sort key: 1,024 bytes), "API_BatchWriteItem" in the DynamoDB API Reference,
    # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html:
    # one bad field would cost its whole chunk, which is why the store checks keys before
    # sending (test above). Without that check, no record of the chunk may be claimed written.
    store = make_store(write_mode="batch")
    unchecked = UncheckedStore(store.settings)
    try:
        good = [record(f"env:e{i}", 1) for i in range(5)]
        with pytest.raises(PartialWriteError) as raised:
            await unchecked.cache_set_all([*good[:2], record(LONG_FIELD, 1), *good[2:]], False)
        assert sorted(raised.value.failed_fields) == sorted([LONG_FIELD, *(r.field for r in good)])
        assert await store.cache_get_all() == []
    finally:
        await unchecked.cache_close()


async def test_a_refused_record_keeps_the_row_it_had(make_store: StoreMaker) -> None:
    store = make_store()
    big = kit_record("env:big", 2)
    await store.cache_set_all([big, kit_record("env:a", 2)], False)
    grown = StoredRecord("env:big", 4, b"x" * (400 * 1024 + 1))
    with pytest.raises(PartialWriteError):
        await store.cache_set_all([grown, kit_record("env:a", 4)], False)
    assert as_map(await store.cache_get_all()) == as_map([big, kit_record("env:a", 4)])


# ---------------------------------------------------------------------------------------------
# rows another program wrote
# ---------------------------------------------------------------------------------------------

#: Attributes of a foreign row (beside its keys), and what the report must say about it.
FOREIGN_ROWS: dict[str, tuple[dict[str, Any], str]] = {
    "item is a string": ({"item": {"S": "text"}}, "no binary 'item' or 'tombstone'"),
    "no item at all": ({"other": {"S": "x"}}, "no binary 'item' or 'tombstone'"),
    "version is a string": (
        {"item": {"B": b"\x00"}, "version": {"S": "abc"}},
        "'version' attribute is not a number",
    ),
    "version is a fraction": (
        {"item": {"B": b"\x00"}, "version": {"N": "2.5"}},
        "'version' attribute, '2.5', is not an integer",
    ),
}


@pytest.mark.parametrize("case", sorted(FOREIGN_ROWS))
async def test_a_foreign_row_is_in_the_load_report_with_its_reason(
    server: EmulatorServer, make_store: StoreMaker, cache_key: str, case: str
) -> None:
    # A row without a binary item used to be left out with a warning only: `cache verify`
    # then said OK.
    store = make_store()
    cache = make_cache(store, cache_key)
    await cache.set_all(snapshot_of("good"))
    attributes, problem = FOREIGN_ROWS[case]
    put_row(server, cache_key, "env:foreign", **attributes)

    load = await cache.get_all()

    assert set(load.snapshot.environments) == {"good"}
    [skipped] = load.report.skipped
    assert (skipped.field, skipped.reason) == ("env:foreign", SkipReason.FOREIGN_DATA)
    assert problem in skipped.message
    await cache.set_all(load.snapshot)
    assert (await cache.get_all()).report.skipped == ()


@pytest.mark.parametrize("inflated", ["1E+125", str(2**70), "-6"])
async def test_an_inflated_stored_version_is_reported_and_replaced(
    server: EmulatorServer, make_store: StoreMaker, cache_key: str, inflated: str
) -> None:
    store = make_store()
    cache = make_cache(store, cache_key)
    await cache.set_all(snapshot_of("e1", "e2", version=3))
    set_version(server, cache_key, "env:e1", {"N": inflated})

    load = await cache.get_all()
    assert [(item.field, item.reason) for item in load.report.skipped] == [
        ("env:e1", SkipReason.INVALID_VERSION)
    ]
    # The condition `version < :v` compared 8 with 1E+125 and refused the write for ever.
    assert await cache.upsert(Environment.from_json(env_json("e1", 4))) is True
    reload = await cache.get_all()
    assert reload.report.skipped == ()
    assert reload.snapshot.environments["e1"].version == 4


@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_set_all_replaces_and_purge_removes_a_damaged_version(
    server: EmulatorServer, make_store: StoreMaker, cache_key: str, write_mode: str
) -> None:
    store = make_store(write_mode=write_mode)
    await store.cache_set_all([kit_record("env:a", 2), kit_record("env:b", 2)], False)
    set_version(server, cache_key, "env:a", {"N": "1E+125"})
    set_version(server, cache_key, "env:b", {"S": "abc"})
    await store.cache_set_all([kit_record("env:a", 2)], False)  # replaces a, deletes b
    assert as_map(await store.cache_get_all()) == as_map([kit_record("env:a", 2)])
    set_version(server, cache_key, "env:a", {"N": str(2**70)})
    assert await store.cache_delete("env:a", 3) is True
    assert await store.cache_get_all() == []
