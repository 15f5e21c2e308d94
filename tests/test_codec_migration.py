"""The format change of 0.2: 0.1 caches still load (committed fixtures written by 0.1), and a
record written by a newer release is never overwritten at the same version."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache import (
    AutoConfigCache,
    Environment,
    Filter,
    KeyRing,
    SkipReason,
    Snapshot,
    StorageFormat,
    StoredRecord,
    Tombstone,
)
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import ItemKind, store_version
from autoconfig_cache.stores.memory import MemoryStore
from autoconfig_cache.stores.sqlite import SQLiteStore

from .items import env_json

FIXTURES = Path(__file__).parent / "fixtures" / "codec_0_1"


def fixtures(fmt: StorageFormat) -> dict[str, dict[str, Any]]:
    entries = json.loads((FIXTURES / f"{fmt.value}.json").read_text())
    return {entry["name"]: entry for entry in entries}


def fixture_record(entry: dict[str, Any]) -> StoredRecord:
    return StoredRecord(entry["field"], entry["store_version"], bytes.fromhex(entry["blob_hex"]))


def cache_for(
    entry: dict[str, Any], store: object | None = None, registry: PluginRegistry | None = None
) -> AutoConfigCache:
    return AutoConfigCache(
        store,
        cache_key=entry["cache_key"],
        keys=KeyRing.from_strings(entry["encryption_key"]),
        format=StorageFormat(entry["format"]),
        registry=registry or PluginRegistry(load_entry_points=False),
    )


def expected_item(entry: dict[str, Any]) -> Environment | Filter | Tombstone:
    expected = entry["expected"]
    if entry["name"].endswith("tombstone"):
        return Tombstone(ItemKind(expected["kind"]), expected["id"], expected["version"])
    kind, _, item_id = entry["field"].partition(":")
    if kind == "env":
        return Environment.from_json(expected)
    return Filter.from_json(expected, filter_id=item_id)


# -- 0.1 fixtures through today's codec --------------------------------------------------------

ALL_FIXTURES = [
    pytest.param(fmt, name, id=f"{fmt.value}-{name}")
    for fmt in StorageFormat
    for name in ("environment", "filter", "tombstone", "filter-tombstone")
]


@pytest.mark.parametrize(("fmt", "name"), ALL_FIXTURES)
def test_a_record_written_by_0_1_still_decodes(fmt: StorageFormat, name: str) -> None:
    entry = fixtures(fmt)[name]
    decoded = cache_for(entry).codec.decode(fixture_record(entry))
    assert decoded.item == expected_item(entry)
    if not isinstance(decoded.item, Tombstone):
        assert decoded.item.to_json() == entry["expected"]  # unknown fields kept too
    assert decoded.legacy is True
    # 0.1 recorded the cache time in v2 data and in tombstones, never in relay items.
    has_time = fmt is StorageFormat.V2 or name.endswith("tombstone")
    assert decoded.cached_at_ms == (entry["cached_at_ms"] if has_time else None)


def test_the_fixtures_are_the_0_1_shapes() -> None:
    # The fixtures are what the migration is tested against: check they hold what 0.1 wrote
    # (its envelopes, its v2 header byte), so that a regenerated file cannot pass silently.
    relay, v2 = fixtures(StorageFormat.RELAY), fixtures(StorageFormat.V2)
    assert relay["environment"]["envelope_0_1"]["modelVersion"] == 1
    assert relay["tombstone"]["envelope_0_1"]["data"].keys() == {"deleted", "version", "cachedAt"}
    assert v2["environment"]["envelope_0_1"]["data"].keys() == {"item", "cachedAt"}
    for entry in v2.values():
        assert entry["v2_header_format_byte"] == 2
        assert bytes.fromhex(entry["blob_hex"])[:4] == b"ACv\x02"


def test_0_1_relay_blobs_use_the_sha256_derivation() -> None:
    entry = fixtures(StorageFormat.RELAY)["environment"]
    decoded = cache_for(entry).codec.decode(fixture_record(entry))
    assert str(decoded.derivation) == "sha256"


def test_0_1_v2_data_reaches_migration_plugins_as_legacy_model_0() -> None:
    calls: list[tuple[str, int]] = []

    class Observer:
        @hookimpl(tryfirst=True)
        def cache_migrate_item(self, kind: str, model_version: int, data: Any) -> None:
            calls.append((kind, model_version))  # and lets the built-in steps answer

    registry = PluginRegistry(load_entry_points=False)
    registry.register(Observer(), name="observer")
    entry = fixtures(StorageFormat.V2)["environment"]
    decoded = cache_for(entry, registry=registry).codec.decode(fixture_record(entry))
    assert calls == [("environment", 0), ("environment", 1)]
    assert decoded.item.to_json() == entry["expected"]


async def test_a_0_1_cache_loads_whole_and_the_next_put_rewrites_it_in_the_new_shape(
    tmp_path: Path,
) -> None:
    for fmt in StorageFormat:
        entries = fixtures(fmt)
        store = SQLiteStore(tmp_path / f"{fmt.value}.db", cache_key=entries["filter"]["cache_key"])
        async with cache_for(entries["filter"], store) as cache:
            await cache.hook.cache_set_all(
                records=[fixture_record(e) for e in entries.values()], rewrite_unchanged=False
            )
            result = await cache.get_all()
            assert result.report.skipped == ()
            assert set(result.snapshot.environments) == {"env-fixture-1"}
            assert set(result.snapshot.filters) == {"filter-fixture-1"}
            assert {t.item_id for t in result.snapshot.tombstones} == {
                "env-fixture-gone",
                "filter-fixture-gone",
            }
            # The stream's put carries the same versions: only the migration makes it write.
            await cache.set_all(result.snapshot)
            for record in await cache.get_records():
                decoded = cache.codec.decode(record)
                assert decoded.legacy is False, record.field
                assert decoded.model_version == 2
                if fmt is StorageFormat.V2:
                    assert record.blob[:4] == b"ACv\x03"


# -- never overwrite what a newer release wrote ---------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[object]:
    made: object
    if request.param == "memory":
        made = MemoryStore(name=None, cache_key="newer")
    else:
        made = SQLiteStore(tmp_path / "newer.db", cache_key="newer")
    yield made


def open_cache(store: object, fmt: StorageFormat) -> AutoConfigCache:
    return AutoConfigCache(
        store,
        cache_key="newer",
        keys=KeyRing.from_strings("newer-release test key"),
        format=fmt,
        registry=PluginRegistry(load_entry_points=False),
    )


def future_model_record(cache: AutoConfigCache, env_id: str, version: int) -> StoredRecord:
    """A record as a later release might write it: model version 3, encrypted normally."""
    plaintext = json.dumps(
        {"kind": "environment", "modelVersion": 3, "data": {"shape": "unknown to 0.2"}}
    ).encode()
    field, stored = f"env:{env_id}", store_version(version)
    blob = cache.hook.cache_encrypt(plaintext=plaintext, context=cache.codec.context(field, stored))
    return StoredRecord(field, stored, blob)


def future_blob_format_record(cache: AutoConfigCache, env_id: str, version: int) -> StoredRecord:
    """A v2 blob whose header names format byte 4."""
    record = cache.codec.encode(Environment.from_json(env_json(env_id, version)))
    return StoredRecord(record.field, record.version, b"ACv\x04" + record.blob[4:])


NewerRecord = Callable[[AutoConfigCache, str, int], StoredRecord]


@pytest.mark.parametrize(
    ("fmt", "make_newer"),
    [
        pytest.param(StorageFormat.V2, future_model_record, id="v2-model-3"),
        pytest.param(StorageFormat.RELAY, future_model_record, id="relay-model-3"),
        pytest.param(StorageFormat.V2, future_blob_format_record, id="v2-blob-format-4"),
    ],
)
async def test_the_repair_after_a_load_never_rewrites_a_newer_record(
    store: object, fmt: StorageFormat, make_newer: NewerRecord
) -> None:
    async with open_cache(store, fmt) as cache:
        newer = make_newer(cache, "newer", 5)
        broken = cache.codec.encode(Environment.from_json(env_json("broken", 5)))
        broken = StoredRecord(
            broken.field, broken.version, broken.blob[:-1] + bytes([broken.blob[-1] ^ 0xFF])
        )
        await cache.hook.cache_set_all(records=[newer, broken], rewrite_unchanged=False)

        result = await cache.get_all()
        reasons = {item.field: item.reason for item in result.report.skipped}
        assert reasons == {
            "env:newer": SkipReason.UNKNOWN_MODEL_VERSION,
            "env:broken": SkipReason.UNDECRYPTABLE,
        }
        # The stream's put holds both at the version stored. The unreadable "broken" record
        # makes this a repair (every unchanged version rewritten), which must spare "newer".
        put = Snapshot(
            environments={
                "newer": Environment.from_json(env_json("newer", 5)),
                "broken": Environment.from_json(env_json("broken", 5)),
            }
        )
        await cache.set_all(put)
        stored = {record.field: record for record in await cache.get_records()}
        assert stored["env:newer"].blob == newer.blob
        assert cache.codec.decode(stored["env:broken"]).item.version == 5

        # A second put at the same version (no repair pending) leaves it too...
        await cache.set_all(put)
        assert {r.field: r.blob for r in await cache.get_records()}["env:newer"] == newer.blob
        # ...and so does a patch at the same version (the store's version guard).
        assert not await cache.upsert(Environment.from_json(env_json("newer", 5)))
        assert {r.field: r.blob for r in await cache.get_records()}["env:newer"] == newer.blob


async def test_a_higher_version_from_the_stream_replaces_a_newer_format_record(
    store: object,
) -> None:
    async with open_cache(store, StorageFormat.V2) as cache:
        newer = future_model_record(cache, "a", 5)
        await cache.hook.cache_set_all(records=[newer], rewrite_unchanged=False)
        await cache.get_all()
        await cache.set_all(Snapshot(environments={"a": Environment.from_json(env_json("a", 6))}))
        (record,) = await cache.get_records()
        assert cache.codec.decode(record).item.version == 6


async def test_a_newer_record_alone_does_not_trigger_the_repair(store: object) -> None:
    # Unreadable records make the next put rewrite every unchanged record once; one that a newer
    # release wrote is not this release's to repair, so it triggers no rewrite at all.
    async with open_cache(store, StorageFormat.V2) as cache:
        good = cache.codec.encode(Environment.from_json(env_json("good", 5)))
        newer = future_model_record(cache, "newer", 5)
        await cache.hook.cache_set_all(records=[good, newer], rewrite_unchanged=False)
        await cache.get_all()
        await cache.set_all(
            Snapshot(
                environments={
                    "good": Environment.from_json(env_json("good", 5)),
                    "newer": Environment.from_json(env_json("newer", 5)),
                }
            )
        )
        stored = {record.field: record.blob for record in await cache.get_records()}
    assert stored == {"env:good": good.blob, "env:newer": newer.blob}
