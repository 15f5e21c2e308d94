"""Tombstones in the DynamoDB store: rows without the ``item`` attribute a Relay Proxy decodes.

Every release of the Relay Proxy's cache (ld-relay ``internal/autoconfigcache/dynamodb_store.go``)
queries the partition ``namespace = cache key`` and decodes the binary ``item`` attribute of each
row, skipping rows without one. These tests look at exactly that after each write, with a plain
boto3 client, and play the Relay Proxy's own writes (PutItem of a whole row; a full rewrite that
deletes every sort key it does not write).
"""

from __future__ import annotations

from typing import Any

import pytest

from autoconfig_cache.records import StoredRecord
from autoconfig_cache.testing import as_states, tombstone
from autoconfig_cache.testing import record as item

from .conftest import TABLE, EmulatorServer, StoreMaker


def rows(server: EmulatorServer, cache_key: str) -> dict[str, dict[str, Any]]:
    """Every row of the partition, by sort key (consistent Query, all pages)."""
    client = server.client()
    found: dict[str, dict[str, Any]] = {}
    start: dict[str, Any] | None = None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = client.query(
            TableName=TABLE,
            ConsistentRead=True,
            KeyConditionExpression="#ns = :ns",
            ExpressionAttributeNames={"#ns": "namespace"},
            ExpressionAttributeValues={":ns": {"S": cache_key}},
            **extra,
        )
        for row in page["Items"]:
            found[row["key"]["S"]] = row
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def relay_view(server: EmulatorServer, cache_key: str) -> dict[str, bytes]:
    """What a Relay Proxy decodes: the binary ``item`` of each row that has one."""
    return {
        key: row["item"]["B"]
        for key, row in rows(server, cache_key).items()
        if "B" in row.get("item", {})
    }


def blobs(*records: StoredRecord) -> dict[str, bytes]:
    return {r.field: r.blob for r in records}


def relay_put_item(server: EmulatorServer, cache_key: str, field: str, blob: bytes) -> None:
    """A Relay Proxy's Upsert: PutItem of a whole row with namespace, key and item only."""
    server.client().put_item(
        TableName=TABLE,
        Item={"namespace": {"S": cache_key}, "key": {"S": field}, "item": {"B": blob}},
    )


def relay_set_all(server: EmulatorServer, cache_key: str, fields: dict[str, bytes]) -> None:
    """A Relay Proxy's SetAll: delete every sort key of the partition it does not write."""
    client = server.client()
    for key in rows(server, cache_key):
        if key not in fields:
            client.delete_item(
                TableName=TABLE, Key={"namespace": {"S": cache_key}, "key": {"S": key}}
            )
    for field, blob in fields.items():
        relay_put_item(server, cache_key, field, blob)


async def test_after_each_upsert_the_relay_decodes_exactly_the_live_items(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str
) -> None:
    store = make_store()
    a, b, c = item("env:a", 2), item("env:b", 2), item("filter:c", 4)
    for record in (a, b, c):
        await store.cache_upsert(record)
    assert relay_view(server, cache_key) == blobs(a, b, c)
    gone = tombstone("env:b", 3)
    assert await store.cache_upsert(gone) is True
    assert relay_view(server, cache_key) == blobs(a, c)
    assert await store.cache_upsert(tombstone("filter:c", 5)) is True
    assert relay_view(server, cache_key) == blobs(a)
    back = item("env:b", 4)
    assert await store.cache_upsert(back) is True
    assert relay_view(server, cache_key) == blobs(a, back)
    assert as_states(await store.cache_get_all()) == {
        "env:a": (2, a.blob, False),
        "env:b": (4, back.blob, False),
        "filter:c": (5, tombstone("filter:c", 5).blob, True),
    }


@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_after_each_set_all_the_relay_decodes_exactly_the_live_items(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str, write_mode: str
) -> None:
    store = make_store(write_mode=write_mode)
    a, b, c = item("env:a", 2), tombstone("env:b", 3), item("filter:c", 2)
    await store.cache_set_all([a, b, c], False)
    assert relay_view(server, cache_key) == blobs(a, c)
    a2, b2, d = tombstone("env:a", 3), item("env:b", 4), tombstone("env:d", 9)
    await store.cache_set_all([a2, b2, c, d], False)
    assert relay_view(server, cache_key) == blobs(b2, c)
    assert as_states(await store.cache_get_all()) == {
        "env:a": (3, a2.blob, True),
        "env:b": (4, b2.blob, False),
        "filter:c": (2, c.blob, False),
        "env:d": (9, d.blob, True),
    }
    await store.cache_set_all([c], False)
    assert set(rows(server, cache_key)) == {"filter:c"}


async def test_a_tombstone_row_holds_its_blob_outside_the_item_attribute(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str
) -> None:
    store = make_store()
    await store.cache_upsert(item("env:a", 6))
    await store.cache_upsert(tombstone("env:a", 7))
    row = rows(server, cache_key)["env:a"]
    assert set(row) == {"namespace", "key", "tombstone", "version"}
    assert row["tombstone"]["B"] == tombstone("env:a", 7).blob
    assert row["version"]["N"] == "7"


async def test_relay_upsert_over_a_tombstone_reads_as_a_relay_written_item(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str
) -> None:
    store = make_store()
    await store.cache_upsert(tombstone("env:a", 7))
    relay_put_item(server, cache_key, "env:a", b"relay-a")
    assert as_states(await store.cache_get_all()) == {"env:a": (0, b"relay-a", False)}
    gone = tombstone("env:a", 9)
    assert await store.cache_upsert(gone) is True
    assert relay_view(server, cache_key) == {}
    assert as_states(await store.cache_get_all()) == {"env:a": (9, gone.blob, True)}


async def test_relay_full_rewrite_removes_our_tombstone_rows(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str
) -> None:
    # The documented trade-off of keeping tombstones in the Relay Proxy's partition: its SetAll
    # deletes every row it does not write, tombstones included.
    store = make_store()
    await store.cache_set_all([item("env:a", 2), tombstone("env:b", 3)], False)
    relay_set_all(server, cache_key, {"env:a": b"relay-a"})
    assert as_states(await store.cache_get_all()) == {"env:a": (0, b"relay-a", False)}


@pytest.mark.parametrize("write_mode", ["conditional", "batch"])
async def test_tombstone_left_in_the_item_attribute_by_0_1_moves_on_the_next_put(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str, write_mode: str
) -> None:
    old = tombstone("env:a", 7)
    server.client().put_item(
        TableName=TABLE,
        Item={
            "namespace": {"S": cache_key},
            "key": {"S": "env:a"},
            "item": {"B": old.blob},
            "version": {"N": "7"},
        },
    )
    store = make_store(write_mode=write_mode)
    # The store cannot tell it is a tombstone (the codec does, from the envelope).
    assert as_states(await store.cache_get_all()) == {"env:a": (7, old.blob, False)}
    await store.cache_set_all([old], False)
    assert relay_view(server, cache_key) == {}
    assert as_states(await store.cache_get_all()) == {"env:a": (7, old.blob, True)}


async def test_an_equal_version_item_in_set_all_never_displaces_a_tombstone(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str
) -> None:
    store = make_store()
    gone = tombstone("env:a", 7)
    await store.cache_upsert(gone)
    await store.cache_set_all([StoredRecord("env:a", 7, b"item at the same version")], False)
    assert relay_view(server, cache_key) == {}
    assert as_states(await store.cache_get_all()) == {"env:a": (7, gone.blob, True)}


async def test_purge_and_clear_remove_tombstone_rows(
    make_store: StoreMaker, server: EmulatorServer, cache_key: str
) -> None:
    store = make_store()
    await store.cache_set_all(
        [tombstone("env:a", 3), tombstone("env:b", 5), item("env:c", 2)], False
    )
    assert await store.cache_delete("env:a", 4) is True
    assert set(rows(server, cache_key)) == {"env:b", "env:c"}
    await store.cache_clear()
    assert rows(server, cache_key) == {}
