"""The stream manager's store audits: what the store lost is written again from memory.

Against the local stream server over loopback and real stores behind the real cache facade.
Most tests run one audit at a time (``manager.audit.audit_once()``), so nothing depends on the
schedule; one lets the schedule run with a short interval.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from autoconfig_cache.audit import AuditFindings, AuditResult
from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.models import Environment
from autoconfig_cache.records import StoredRecord, store_version
from autoconfig_cache.stream import StreamClient, StreamManager, StreamServer
from tests.items import env_json, filter_json

from .conftest import (
    AUTOCONFIG_KEY,
    FAST,
    FAST_RESYNC,
    CountingStore,
    RecordingHandler,
    eventually,
    fetch_status_and_metrics,
    make_cache,
)

DATA = {
    "environments": {"e1": env_json("e1", 3), "e2": env_json("e2", 5)},
    "filters": {"f1": filter_json(2)},
}


def manager_for(
    server: StreamServer, cache: AutoConfigCache, handler: Any, audit_interval: float = 0
) -> StreamManager:
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, read_timeout=30.0)
    return StreamManager(
        cache, handler, client=client, resync_backoff=FAST_RESYNC, audit_interval=audit_interval
    )


async def stored(store: object) -> dict[str, StoredRecord]:
    """What the store holds, by field."""
    records: list[StoredRecord] = await store.cache_get_all()  # type: ignore[attr-defined]
    return {record.field: record for record in records}


@pytest.fixture
async def running(server: StreamServer) -> AsyncIterator[tuple[StreamManager, CountingStore]]:
    """A manager that received DATA from the stream and wrote it to a counting memory store."""
    server.set_snapshot(DATA)
    store = CountingStore()
    handler = RecordingHandler()
    async with manager_for(server, make_cache(store), handler) as manager:
        await handler.wait_for(("all_received", "stream"))
        await eventually(lambda: len(store._data.records) == 3, what="the put written")
        await idle(manager)
        yield manager, store


async def test_an_audit_is_deferred_while_the_instances_own_writes_are_pending(
    running: tuple[StreamManager, CountingStore],
) -> None:
    manager, store = running
    await store.cache_clear()
    async with manager._write_lock:  # the writer busy with a write of its own
        assert await manager.audit.audit_once() is None
    status = manager.status().audit
    assert status is not None and status.audits == 0
    assert await manager.audit.audit_once() is AuditResult.REPAIRED


async def test_an_audit_writes_back_a_store_emptied_behind_the_instance(
    running: tuple[StreamManager, CountingStore],
) -> None:
    manager, store = running
    await store.cache_clear()
    assert await manager.audit.audit_once() is AuditResult.REPAIRED
    assert {field: record.version for field, record in (await stored(store)).items()} == {
        "env:e1": store_version(3),
        "env:e2": store_version(5),
        "filter:f1": store_version(2),
    }
    status = manager.status().audit
    assert status is not None
    assert status.findings == AuditFindings(missing=3)
    assert status.repaired == 3
    assert not manager.status().store_dirty


async def test_an_audit_writes_back_one_lost_record_and_leaves_the_rest_untouched(
    running: tuple[StreamManager, CountingStore],
) -> None:
    manager, store = running
    await store.cache_delete("env:e2", store_version(5) + 1)
    writes = store.writes
    assert await manager.audit.audit_once() is AuditResult.REPAIRED
    assert set(await stored(store)) == {"env:e1", "env:e2", "filter:f1"}
    assert store.writes == writes + 1  # one upsert: the lost record, nothing else rewritten


async def test_an_audit_writes_back_a_lost_tombstone_not_the_item(
    server: StreamServer, running: tuple[StreamManager, CountingStore]
) -> None:
    manager, store = running
    await server.push_delete("/environments/e1", 4)
    tombstone_version = store_version(4, deleted=True)
    await eventually(
        lambda: _version_of(store, "env:e1") == tombstone_version, what="the delete stored"
    )
    await idle(manager)
    await store.cache_clear()
    await store.cache_upsert(StoredRecord("env:e2", store_version(5), b"kept"))
    assert await manager.audit.audit_once() is AuditResult.REPAIRED
    records = await stored(store)
    assert records["env:e1"].version == tombstone_version
    assert records["env:e1"].deleted
    assert records["env:e2"].blob == b"kept"  # in step: not rewritten


async def test_an_audit_leaves_a_newer_record_from_another_writer_alone(
    running: tuple[StreamManager, CountingStore],
) -> None:
    manager, store = running
    other = make_cache(store)  # another instance with the same keys, ahead of this one
    await other.upsert(Environment.from_json(env_json("e2", 9)))
    await other.upsert(Environment.from_json(env_json("e9", 1)))
    assert await manager.audit.audit_once() is AuditResult.OK
    status = manager.status().audit
    assert status is not None
    assert status.findings == AuditFindings(ahead=1, unknown=1)
    assert (await stored(store))["env:e2"].version == store_version(9)


async def test_an_audit_never_overwrites_a_record_under_a_key_it_does_not_hold(
    running: tuple[StreamManager, CountingStore],
) -> None:
    manager, store = running
    rotated = AutoConfigCache(store, cache_key="test", keys=KeyRing.from_strings("a-new-key"))
    foreign = rotated.codec.encode(Environment.from_json(env_json("e2", 4)))
    await store.cache_delete("env:e2", store_version(5) + 1)
    await store.cache_upsert(foreign)  # older than memory's v5, under a key it does not hold
    writes = store.writes
    assert await manager.audit.audit_once() is AuditResult.OK
    assert (await stored(store))["env:e2"].blob == foreign.blob
    assert store.writes == writes
    status = manager.status().audit
    assert status is not None
    assert status.findings.foreign == 1
    [entry] = status.foreign
    assert entry.field == "env:e2" and "not configured" in entry.reason


async def test_an_audit_is_shown_in_status_and_metrics(
    running: tuple[StreamManager, CountingStore],
) -> None:
    manager, store = running
    await store.cache_clear()
    await manager.audit.audit_once()
    status_text, metrics_text = await fetch_status_and_metrics(manager)
    audit = json.loads(status_text)["audit"]
    assert audit["lastResult"] == "repaired"
    assert audit["found"]["missing"] == 3
    assert audit["repaired"] == 3 and audit["repairedTotal"] == 3
    assert audit["lastAuditTime"] is not None and audit["lastError"] is None
    assert 'autoconfig_cache_audits_total{result="repaired"} 1' in metrics_text
    assert "autoconfig_cache_audit_repaired_records_total 3" in metrics_text
    assert 'autoconfig_cache_audit_found_records{kind="missing"} 3' in metrics_text


async def test_a_failed_repair_counts_as_a_store_error_and_hands_over_to_the_resync(
    running: tuple[StreamManager, CountingStore],
) -> None:
    manager, store = running
    await store.cache_clear()
    # The versions read still answers (CountingStore fails reads of records and writes only):
    # the audit finds the store empty and its repair fails.
    store.failing = True
    assert await manager.audit.audit_once() is AuditResult.FAILED
    status = manager.status()
    assert status.audit is not None and "simulated outage" in (status.audit.last_error or "")
    assert status.last_store_error is not None and status.last_store_error.startswith(
        "audit repair"
    )
    await eventually(lambda: status_dirty(manager), what="the resync loop takes over")
    store.failing = False
    await eventually(lambda: not status_dirty(manager), what="the store re-synchronised")
    assert set(await stored(store)) == {"env:e1", "env:e2", "filter:f1"}


def status_dirty(manager: StreamManager) -> bool:
    return manager.status().store_dirty


async def test_scheduled_audits_repair_an_emptied_store_on_their_own(
    server: StreamServer,
) -> None:
    server.set_snapshot(DATA)
    store = CountingStore()
    handler = RecordingHandler()
    async with manager_for(server, make_cache(store), handler, audit_interval=0.05) as manager:
        await handler.wait_for(("all_received", "stream"))
        await eventually(lambda: len(store._data.records) == 3, what="the put written")
        await store.cache_clear()
        await eventually(lambda: len(store._data.records) == 3, what="the audit's repair")
        status = manager.status().audit
        assert status is not None and status.results[AuditResult.REPAIRED] >= 1


async def test_no_audit_runs_without_a_store(server: StreamServer) -> None:
    server.set_snapshot(DATA)
    handler = RecordingHandler()
    async with manager_for(server, AutoConfigCache.null(), handler, audit_interval=0.05) as m:
        await handler.wait_for(("all_received", "stream"))
        status = m.status().audit
        assert status is not None and status.interval_seconds == 0.0
        assert "audit" not in m._tasks


async def idle(manager: StreamManager) -> None:
    """Wait until the manager has no write on its way (an audit would be deferred)."""
    await eventually(lambda: not manager._writes_pending(), what="the writer idle")


def _version_of(store: CountingStore, field: str) -> int | None:
    record = store._data.records.get(field)
    return record.version if record is not None else None
