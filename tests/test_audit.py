"""The store audit's logic: comparing memory with the store, judging records, scheduling.

The comparison functions are pure; the :class:`StoreAudit` tests run one audit at a time
against a real memory or SQLite store, with a repair callable that records what it is asked to
write (the stream manager's real repair is tested in ``tests/stream/test_audit_manager.py``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from autoconfig_cache.audit import (
    DEFAULT_AUDIT_INTERVAL,
    JITTER,
    AuditFindings,
    AuditResult,
    Problem,
    RecordVerdict,
    StoreAudit,
    classify,
    compare_versions,
    default_interval,
    expected_versions,
    judge_record,
    next_delay,
    records_written,
)
from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing, StorageFormat
from autoconfig_cache.codec.aesgcm import V2_MAGIC
from autoconfig_cache.config import Config
from autoconfig_cache.errors import ConfigurationError, RefusedRecord, StoreUnavailableError
from autoconfig_cache.models import Environment, Filter, Snapshot, Tombstone
from autoconfig_cache.records import ItemKind, StoredRecord, store_version
from autoconfig_cache.storebase import MAX_STORED_VERSION, foreign_record
from autoconfig_cache.stores.memory import MemoryStore
from autoconfig_cache.stores.sqlite import SQLiteStore
from tests.items import env_json, filter_json

CACHE_KEY = "audit-test"


def environment(env_id: str, version: int) -> Environment:
    return Environment.from_json(env_json(env_id, version))


def snapshot(*items: Environment | Filter, tombstones: Sequence[Tombstone] = ()) -> Snapshot:
    return Snapshot(
        {item.env_id: item for item in items if isinstance(item, Environment)},
        {item.filter_id: item for item in items if isinstance(item, Filter)},
        tuple(tombstones),
    )


def cache_with(store: object | None, key: str = "key-one", *previous: str) -> AutoConfigCache:
    return AutoConfigCache(
        store, cache_key=CACHE_KEY, keys=KeyRing.from_strings(key, list(previous))
    )


# ---------------------------------------------------------------------------------------------
# memory's state as the store should hold it
# ---------------------------------------------------------------------------------------------


def test_expected_versions_encode_items_and_tombstones_as_the_store_compares_them() -> None:
    state = snapshot(
        environment("e1", 4),
        Filter.from_json(filter_json(2), filter_id="f1"),
        tombstones=[Tombstone(ItemKind.FILTER, "gone", 6)],
    )
    assert expected_versions(state) == {"env:e1": 8, "filter:f1": 4, "filter:gone": 13}


def test_expected_versions_leave_out_a_record_refused_at_that_very_version() -> None:
    state = snapshot(environment("big", 3), environment("other", 3))
    refused = [
        RefusedRecord("env:big", store_version(3), "over the limit"),
        RefusedRecord("env:other", store_version(2), "an older version was refused"),
    ]
    # The store would refuse env:big again; env:other's refusal was of an older version.
    assert expected_versions(state, refused) == {"env:other": 6}


# ---------------------------------------------------------------------------------------------
# the cheap comparison of versions
# ---------------------------------------------------------------------------------------------


def test_compare_versions_finds_nothing_when_the_store_is_in_step() -> None:
    diff = compare_versions({"env:a": 4, "filter:b": 2}, {"env:a": 4, "filter:b": 2})
    assert diff.suspects == {} and diff.ahead == 0 and diff.unknown == 0


def test_compare_versions_names_missing_older_and_damaged_fields() -> None:
    expected = {"env:missing": 4, "env:older": 6, "env:negative": 2, "env:inflated": 2}
    stored = {"env:older": 4, "env:negative": -1, "env:inflated": MAX_STORED_VERSION + 1}
    assert compare_versions(expected, stored).suspects == {
        "env:missing": Problem.MISSING,
        "env:older": Problem.OLDER,
        "env:negative": Problem.DAMAGED,
        "env:inflated": Problem.DAMAGED,
    }


def test_compare_versions_leaves_a_newer_stored_version_alone() -> None:
    diff = compare_versions({"env:a": 4}, {"env:a": 6})
    assert diff.suspects == {} and diff.ahead == 1


def test_compare_versions_counts_fields_memory_does_not_hold_without_suspecting_them() -> None:
    diff = compare_versions({"env:a": 4}, {"env:a": 4, "env:other": 2, "filter:x": 9})
    assert diff.suspects == {} and diff.unknown == 2


def test_compare_versions_takes_a_record_of_unknown_version_as_present() -> None:
    # Version 0 is what a store reports for a record a Relay Proxy wrote (it keeps no version).
    assert compare_versions({"env:relay": 4}, {"env:relay": 0}).suspects == {}


def test_compare_versions_suspects_an_item_where_memory_holds_its_tombstone() -> None:
    # The tombstone outranks the item of the same version (store_version 2v + 1 > 2v).
    expected = {"env:a": store_version(3, deleted=True)}
    assert compare_versions(expected, {"env:a": store_version(3)}).suspects == {
        "env:a": Problem.OLDER
    }


# ---------------------------------------------------------------------------------------------
# judging one stored record
# ---------------------------------------------------------------------------------------------


def test_a_readable_record_is_judged_by_its_content_version() -> None:
    codec = cache_with(None).codec
    verdict = judge_record(codec.encode(environment("e1", 5)), codec)
    assert verdict == RecordVerdict(None, store_version(5))
    tombstone = codec.encode(Tombstone(ItemKind.ENVIRONMENT, "e1", 5))
    assert judge_record(tombstone, codec).content_version == store_version(5, deleted=True)


def test_a_record_under_a_previous_key_is_readable() -> None:
    written = cache_with(None, "key-old").codec.encode(environment("e1", 2))
    rotated = cache_with(None, "key-new", "key-old").codec
    assert judge_record(written, rotated).problem is None


def test_a_record_under_a_key_this_instance_does_not_hold_is_foreign() -> None:
    written = cache_with(None, "key-of-another-instance").codec.encode(environment("e1", 2))
    verdict = judge_record(written, cache_with(None, "key-one").codec)
    assert verdict.problem is Problem.FOREIGN
    assert "not configured" in verdict.reason


def test_a_tampered_record_under_a_known_key_is_damaged() -> None:
    codec = cache_with(None).codec
    record = codec.encode(environment("e1", 2))
    tampered = StoredRecord(
        record.field, record.version, record.blob[:-1] + bytes([record.blob[-1] ^ 0xFF])
    )
    verdict = judge_record(tampered, codec)
    assert verdict.problem is Problem.DAMAGED
    assert "authentication failed" in verdict.reason


def test_a_record_in_a_newer_format_is_foreign() -> None:
    codec = cache_with(None).codec
    record = codec.encode(environment("e1", 2))
    # The v2 header's format byte follows the magic; a higher one is a newer release's.
    at = len(V2_MAGIC)
    newer = StoredRecord(
        record.field, record.version, record.blob[:at] + b"\x7f" + record.blob[at + 1 :]
    )
    verdict = judge_record(newer, codec)
    assert verdict.problem is Problem.FOREIGN
    assert "newer release" in verdict.reason


def test_a_relay_record_no_key_opens_is_foreign_since_relay_blobs_name_no_key() -> None:
    other = AutoConfigCache(
        None, cache_key=CACHE_KEY, keys=KeyRing.from_strings("a"), format=StorageFormat.RELAY
    )
    mine = AutoConfigCache(
        None, cache_key=CACHE_KEY, keys=KeyRing.from_strings("b"), format=StorageFormat.RELAY
    )
    verdict = judge_record(other.codec.encode(environment("e1", 2)), mine.codec)
    assert verdict.problem is Problem.FOREIGN


def test_something_that_is_not_a_record_is_damaged() -> None:
    record = foreign_record("env:e1", "the blob is TEXT, not BLOB")
    verdict = judge_record(record, cache_with(None).codec)
    assert verdict == RecordVerdict(Problem.DAMAGED, reason="the blob is TEXT, not BLOB")


def test_a_readable_record_under_a_damaged_version_number_is_damaged() -> None:
    codec = cache_with(None).codec
    record = codec.encode(environment("e1", 2))
    inflated = StoredRecord(record.field, MAX_STORED_VERSION + 1, record.blob)
    assert judge_record(inflated, codec).problem is Problem.DAMAGED


# ---------------------------------------------------------------------------------------------
# classifying the suspects on the full read
# ---------------------------------------------------------------------------------------------


def judge_by_blob(record: StoredRecord) -> RecordVerdict:
    """A stand-in judge: the blob says what the record is (``foreign``, ``damaged``, or the
    content version as digits)."""
    if record.blob == b"foreign":
        return RecordVerdict(Problem.FOREIGN, reason="another key")
    if record.blob == b"damaged":
        return RecordVerdict(Problem.DAMAGED, reason="tampered")
    return RecordVerdict(None, int(record.blob))


def test_classify_repairs_missing_older_and_damaged_and_reports_foreign() -> None:
    expected = {"env:missing": 4, "env:older": 6, "env:damaged": 4, "env:foreign": 8}
    records = {
        "env:older": StoredRecord("env:older", 4, b"4"),
        "env:damaged": StoredRecord("env:damaged", 2, b"damaged"),
        "env:foreign": StoredRecord("env:foreign", 6, b"foreign"),
    }
    result = classify(expected, expected, records, judge_by_blob)
    assert sorted(result.repair) == ["env:damaged", "env:missing", "env:older"]
    assert result.findings == AuditFindings(missing=1, older=1, damaged=1, foreign=1)
    assert [(entry.field, entry.reason) for entry in result.foreign] == [
        ("env:foreign", "another key")
    ]


def test_classify_leaves_a_field_repaired_or_advanced_since_the_versions_were_read() -> None:
    expected = {"env:repaired": 4, "env:advanced": 4}
    records = {
        "env:repaired": StoredRecord("env:repaired", 4, b"4"),
        "env:advanced": StoredRecord("env:advanced", 6, b"6"),
    }
    result = classify(expected, expected, records, judge_by_blob)
    assert result.repair == ()
    assert result.findings == AuditFindings(ahead=1)


def test_classify_leaves_newer_content_under_a_lagging_version_number_alone() -> None:
    expected = {"env:a": 4}
    records = {"env:a": StoredRecord("env:a", 2, b"6")}  # the number lags; the content is newer
    result = classify(expected, expected, records, judge_by_blob)
    assert result.repair == () and result.findings.ahead == 1


def test_classify_never_asks_to_repair_a_foreign_record_whatever_its_version() -> None:
    expected = {"env:a": 40}
    records = {"env:a": StoredRecord("env:a", 2, b"foreign")}
    assert classify(expected, expected, records, judge_by_blob).repair == ()


# ---------------------------------------------------------------------------------------------
# StoreAudit against real stores, one audit at a time
# ---------------------------------------------------------------------------------------------


class RecordingRepair:
    """Records what an audit asks to repair; writes memory's records through ``cache``."""

    def __init__(self, cache: AutoConfigCache, state: Snapshot, fail: bool = False) -> None:
        self.cache = cache
        self.state = state
        self.fail = fail
        self.calls: list[tuple[str, ...] | None] = []

    async def __call__(self, fields: Sequence[str] | None) -> int | None:
        self.calls.append(None if fields is None else tuple(sorted(fields)))
        if self.fail:
            raise StoreUnavailableError("the store went away")
        if fields is None:
            await self.cache.set_all(self.state)
            return len(self.state)
        written = 0
        for item in self.state.items():
            if f"{item.kind.field_prefix}:{item.id}" in fields:
                written += await self.cache.upsert(item)
        return written


@pytest.fixture
async def memory_cache() -> AsyncIterator[AutoConfigCache]:
    cache = cache_with(MemoryStore(cache_key=CACHE_KEY))
    yield cache
    await cache.close()


STATE = snapshot(environment("e1", 2), environment("e2", 3), environment("e3", 1))


async def test_an_audit_of_a_store_in_step_finds_nothing_and_writes_nothing(
    memory_cache: AutoConfigCache,
) -> None:
    await memory_cache.set_all(STATE)
    repair = RecordingRepair(memory_cache, STATE)
    audit = StoreAudit(memory_cache, lambda: STATE, repair, 30.0)
    assert await audit.audit_once() is AuditResult.OK
    assert repair.calls == []
    assert audit.status().findings == AuditFindings()


async def test_an_audit_of_an_emptied_store_writes_the_whole_snapshot_back(
    memory_cache: AutoConfigCache,
) -> None:
    await memory_cache.set_all(STATE)
    await memory_cache.clear()
    repair = RecordingRepair(memory_cache, STATE)
    audit = StoreAudit(memory_cache, lambda: STATE, repair, 30.0)
    assert await audit.audit_once() is AuditResult.REPAIRED
    assert repair.calls == [None]
    status = audit.status()
    assert status.findings == AuditFindings(missing=3)
    assert status.repaired == 3 and status.repaired_total == 3
    reloaded = (await memory_cache.get_all()).snapshot
    assert {k: v.version for k, v in reloaded.environments.items()} == {"e1": 2, "e2": 3, "e3": 1}
    # The next audit finds the store in step.
    assert await audit.audit_once() is AuditResult.OK
    assert audit.status().results == {
        AuditResult.OK: 1,
        AuditResult.REPAIRED: 1,
        AuditResult.FAILED: 0,
    }


async def test_an_audit_repairs_only_the_records_the_store_lost(
    memory_cache: AutoConfigCache,
) -> None:
    await memory_cache.set_all(STATE)
    await memory_cache.hook.cache_delete(field="env:e2", version=100)
    repair = RecordingRepair(memory_cache, STATE)
    audit = StoreAudit(memory_cache, lambda: STATE, repair, 30.0)
    assert await audit.audit_once() is AuditResult.REPAIRED
    assert repair.calls == [("env:e2",)]
    assert audit.status().findings == AuditFindings(missing=1)


async def test_an_audit_reports_a_record_under_another_key_and_does_not_repair_it(
    memory_cache: AutoConfigCache,
) -> None:
    await memory_cache.set_all(STATE)
    foreign = cache_with(None, "key-of-another-instance").codec.encode(environment("e2", 1))
    await memory_cache.hook.cache_delete(field="env:e2", version=100)
    await memory_cache.hook.cache_upsert(record=foreign)
    repair = RecordingRepair(memory_cache, STATE)
    audit = StoreAudit(memory_cache, lambda: STATE, repair, 30.0)
    assert await audit.audit_once() is AuditResult.OK
    assert repair.calls == []
    status = audit.status()
    assert status.findings.foreign == 1
    assert [entry.field for entry in status.foreign] == ["env:e2"]
    stored = {record.field: record for record in await memory_cache.get_records()}
    assert stored["env:e2"].blob == foreign.blob


async def test_an_audit_that_cannot_write_is_failed_with_the_stores_error(
    memory_cache: AutoConfigCache,
) -> None:
    repair = RecordingRepair(memory_cache, STATE, fail=True)
    audit = StoreAudit(memory_cache, lambda: STATE, repair, 30.0)
    assert await audit.audit_once() is AuditResult.FAILED
    status = audit.status()
    assert status.last_result is AuditResult.FAILED
    assert status.last_error == "StoreUnavailableError: the store went away"
    assert status.repaired == 0


async def test_an_audit_that_cannot_read_the_store_is_failed(
    memory_cache: AutoConfigCache,
) -> None:
    await memory_cache.close()  # every operation now raises StoreClosedError
    audit = StoreAudit(memory_cache, lambda: STATE, RecordingRepair(memory_cache, STATE), 30.0)
    assert await audit.audit_once() is AuditResult.FAILED
    assert (audit.status().last_error or "").startswith("StoreClosedError")


async def test_an_audit_whose_repair_meets_pending_writes_is_deferred_and_not_recorded(
    memory_cache: AutoConfigCache,
) -> None:
    async def writes_pending(fields: Sequence[str] | None) -> int | None:
        return None  # the manager's answer when its own writes got to the lock first

    audit = StoreAudit(memory_cache, lambda: STATE, writes_pending, 30.0)
    assert await audit.audit_once() is None
    status = audit.status()
    assert status.audits == 0 and status.last_result is None
    assert status.findings == AuditFindings()


async def test_an_audit_while_the_instance_is_writing_is_deferred_without_reading(
    memory_cache: AutoConfigCache,
) -> None:
    await memory_cache.close()  # a read would fail the audit: none must happen
    repair = RecordingRepair(memory_cache, STATE)
    audit = StoreAudit(memory_cache, lambda: STATE, repair, 30.0, busy=lambda: True)
    assert await audit.audit_once() is None
    assert audit.status().audits == 0 and repair.calls == []


async def test_an_audit_without_a_store_never_runs() -> None:
    async def never(fields: Sequence[str] | None) -> int | None:
        raise AssertionError("no audit runs without a store")

    audit = StoreAudit(AutoConfigCache.null(), lambda: STATE, never, 30.0)
    assert not audit.enabled
    await audit.run(asyncio.Event())  # returns at once: nothing to wait for
    assert audit.status().interval_seconds == 0.0


# ---------------------------------------------------------------------------------------------
# the SQLite store's versions agree with its records, foreign rows included
# ---------------------------------------------------------------------------------------------


async def test_sqlite_versions_agree_with_get_all_on_rows_another_program_wrote(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.db"
    store = SQLiteStore(path, CACHE_KEY)
    try:
        await store.cache_set_all([StoredRecord("env:good", 4, b"blob")], False)
        with sqlite3.connect(path) as conn:
            rows = [
                ("env:text-blob", 6, "text, not bytes"),
                ("env:real-version", 1e3, b"blob"),
                ("env:text-version", "seven", b"blob"),
                ("env:inflated", 2**62, b"blob"),
                (b"env:binary-field", 2, b"blob"),
            ]
            conn.executemany(
                "INSERT INTO autoconfig_cache VALUES (?, ?, ?, ?)",
                [(CACHE_KEY, *row) for row in rows],
            )
        records = await store.cache_get_all()
        versions = await store.cache_get_versions()
        assert versions == {record.field: record.version for record in records}
        assert versions["env:good"] == 4 and versions["env:real-version"] == 1000
        assert versions["env:inflated"] == 2**62
        assert versions["env:text-blob"] == 0  # foreign: as cache_get_all gives it
    finally:
        await store.cache_close()


# ---------------------------------------------------------------------------------------------
# the interval: the setting, the store's default, the jitter
# ---------------------------------------------------------------------------------------------


def test_the_audit_interval_defaults_to_the_stores_declared_interval() -> None:
    assert default_interval(cache_with(MemoryStore())) == DEFAULT_AUDIT_INTERVAL == 30.0
    assert default_interval(AutoConfigCache.null()) == 0.0

    class BilledStore(MemoryStore):
        audit_interval_default = 300.0

    assert default_interval(cache_with(BilledStore())) == 300.0


def test_the_dynamodb_store_declares_a_longer_audit_interval() -> None:
    dynamodb = pytest.importorskip("autoconfig_cache_dynamodb.store")
    assert dynamodb.DynamoDBStore.audit_interval_default == 300.0


def test_each_wait_is_the_interval_times_a_factor_within_the_jitter() -> None:
    low, high = JITTER
    assert next_delay(30.0, lambda a, b: a) == pytest.approx(30.0 * low)
    assert next_delay(30.0, lambda a, b: b) == pytest.approx(30.0 * high)
    for _ in range(200):
        assert 30.0 * low <= next_delay(30.0) <= 30.0 * high


def test_the_write_probe_is_read_only_from_stores_that_keep_one() -> None:
    store = MemoryStore()
    assert records_written(store) == 0
    assert records_written(object()) is None


@pytest.mark.parametrize(
    ("given", "expected"), [("0", 0.0), ("1", 1.0), ("2.5", 2.5), ("300", 300.0)]
)
def test_the_audit_interval_setting_is_read_in_seconds(given: str, expected: float) -> None:
    config = Config.load(environ={"AUTO_CONFIG_CACHE_AUDIT_INTERVAL": given})
    assert config.audit_interval == expected


def test_an_unset_audit_interval_leaves_the_choice_to_the_store() -> None:
    assert Config.load(environ={}).audit_interval is None


@pytest.mark.parametrize("given", ["-1", "0.5", "abc", "nan", "inf", "30s"])
def test_a_bad_audit_interval_is_refused_naming_the_setting(given: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Config.load(environ={"AUTO_CONFIG_CACHE_AUDIT_INTERVAL": given})
    message = str(raised.value)
    assert (
        "AUTO_CONFIG_CACHE_AUDIT_INTERVAL" in message and "0 turns the store audit off" in message
    )
