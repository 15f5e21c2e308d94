"""The Redis store's client-side diff decides exactly as its Lua script does (real redis-server).

``cache_set_all`` reads the three hashes, works out on the client which records to write and
sends only those; under sustained contention it sends every record instead and lets the script
decide (its ``full`` mode). Whatever the stored state of a field (absent, live, a tombstone, in
both hashes, written by a Relay Proxy, a damaged or stale versions entry), both paths must leave
the same hashes and count the same writes.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import autoconfig_cache_redis.store as redis_store
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.storebase import MAX_STORED_VERSION
from autoconfig_cache_redis.layout import tombstones_key, versions_key
from autoconfig_cache_redis.scripts import GENERATION_FIELD
from tests.redis.conftest import open_store
from tests.redis.servers import RedisServer

pytestmark = pytest.mark.timeout(120)

FIELD = "env:x"

#: The state of ``FIELD`` before the write: its entries in the data, tombstones and versions
#: hashes.
STATES: dict[str, dict[str, bytes]] = {
    "absent": {},
    "live at 4": {"data": b"old", "version": b"4"},
    "tombstone at 5": {"tombstone": b"old", "version": b"5"},
    "tombstone at 4": {"tombstone": b"old", "version": b"4"},
    "in both hashes": {"data": b"old", "tombstone": b"old", "version": b"4"},
    "live, no version (a Relay Proxy wrote it)": {"data": b"old"},
    "live, version not digits": {"data": b"old", "version": b"4a"},
    "live, version above the range": {
        "data": b"old",
        "version": str(MAX_STORED_VERSION + 1).encode(),
    },
    "live, version with leading zeros": {"data": b"old", "version": b"0004"},
    "a stale versions entry alone": {"version": b"4"},
    # As many versions entries as fields, but not the same fields (each case breaks one of the
    # checks that let the diff trust the versions hash as a whole).
    "a stale versions entry, and a live field with none": {
        "version": b"4",
        "data env:y": b"old",
    },
    "a stale versions entry, and a tombstone with none": {
        "version": b"4",
        "tombstone env:z": b"old",
    },
    "in both hashes, and a stale versions entry": {
        "data": b"old",
        "tombstone": b"old",
        "version": b"4",
        "version env:w": b"4",
    },
}

#: The record of ``FIELD`` written: (version, deleted).
RECORDS = [(version, deleted) for version in (3, 4, 5, 6) for deleted in (False, True)]


def lay_out(client: Any, key: str, state: dict[str, bytes]) -> None:
    """``state`` for ``FIELD`` (and the other fields it names) under ``key``, beside
    ``env:other`` stored at version 2."""
    client.delete(key, versions_key(key), tombstones_key(key))
    client.hset(key, "env:other", b"other")
    client.hset(versions_key(key), "env:other", b"2")
    if "data" in state:
        client.hset(key, FIELD, state["data"])
    if "tombstone" in state:
        client.hset(tombstones_key(key), FIELD, state["tombstone"])
    if "version" in state:
        client.hset(versions_key(key), FIELD, state["version"])
    for name, value in state.items():  # entries of other fields: "<hash> <field>"
        where, _, field = name.partition(" ")
        if field:
            hashes = {"data": key, "tombstone": tombstones_key(key), "version": versions_key(key)}
            client.hset(hashes[where], field, value)


def hashes(client: Any, key: str) -> tuple[dict[bytes, bytes], ...]:
    versions = client.hgetall(versions_key(key))
    versions.pop(GENERATION_FIELD.encode(), None)
    return client.hgetall(key), versions, client.hgetall(tombstones_key(key))


async def test_the_diff_writes_what_the_script_would_for_every_stored_state(
    redis_server: RedisServer, cache_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    diff_key, full_key = f"{cache_key}-diff", f"{cache_key}-full"
    diff, full = open_store(redis_server.url, diff_key), open_store(redis_server.url, full_key)
    cases = itertools.product(STATES.items(), RECORDS, (False, True))
    with redis_server.client() as client:
        for (name, state), (version, deleted), rewrite in cases:
            records = [
                StoredRecord(FIELD, version, b"new", deleted=deleted),
                StoredRecord("env:other", 2, b"other"),
            ]
            lay_out(client, diff_key, state)
            lay_out(client, full_key, state)
            before = diff.records_written, full.records_written
            await diff.cache_set_all(records, rewrite)
            with monkeypatch.context() as patch:
                patch.setattr(redis_store, "_DIFF_ATTEMPTS", 0)  # straight to the full mode
                await full.cache_set_all(records, rewrite)
            case = f"{name}; record {version}{' (tombstone)' if deleted else ''}; {rewrite=}"
            assert hashes(client, diff_key) == hashes(client, full_key), case
            written = diff.records_written - before[0], full.records_written - before[1]
            assert written[0] == written[1], case
    await diff.cache_close()
    await full.cache_close()


async def test_set_all_checks_only_the_records_it_writes(
    redis_server: RedisServer, cache_key: str
) -> None:
    store = open_store(redis_server.url, cache_key)
    records = [StoredRecord(f"env:e{i}", 2, b"blob") for i in range(50)]
    await store.cache_set_all(records, False)
    checked: list[str] = []
    refusal = store._refusal

    def counting_refusal(record: StoredRecord) -> str | None:
        checked.append(record.field)
        return refusal(record)

    store._refusal = counting_refusal  # type: ignore[method-assign]
    changed = [*records[:7], StoredRecord("env:e7", 4, b"new"), *records[8:]]
    await store.cache_set_all(changed, False)
    assert checked == ["env:e7"]
    await store.cache_set_all(changed, True)  # a rewrite writes, so checks, every record
    assert len(checked) == 1 + 50
    await store.cache_close()
