"""``cache rotate-key`` and records a newer release wrote: never deleted, not even with
``--drop-undecryptable`` (which drops only what no key opens); kept byte for byte and reported."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from autoconfig_cache import AutoConfigCache, Environment, StoredRecord
from autoconfig_cache.codec import CURRENT_MODEL_VERSION
from autoconfig_cache.records import store_version
from tests.cli.conftest import load, run_cli, seed
from tests.items import env_json, filter_json
from tests.secret_values import known_secret

KEY = known_secret("key-current-0001")
NEW_KEY = known_secret("key-new-dddd-4444")


def future_model(cache: AutoConfigCache) -> StoredRecord:
    """``env:newer`` as a later release might write it: a model version above this one's."""
    plaintext = json.dumps(
        {
            "kind": "environment",
            "modelVersion": CURRENT_MODEL_VERSION + 1,
            "data": {"shape": "unknown to this release"},
        }
    ).encode()
    field, version = "env:newer", store_version(7)
    context = cache.codec.context(field, version)
    return StoredRecord(
        field, version, cache.hook.cache_encrypt(plaintext=plaintext, context=context)
    )


def future_blob_format(cache: AutoConfigCache) -> StoredRecord:
    """``env:newer`` in a ``v2`` blob whose header names a format byte above this release's."""
    record = cache.codec.encode(Environment.from_json(env_json("newer", 7)))
    return StoredRecord(record.field, record.version, b"ACv\x04" + record.blob[4:])


def rows(db: Path) -> dict[str, bytes]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT field, blob FROM autoconfig_cache").fetchall())


def tamper(db: Path, field: str) -> None:
    blob = bytearray(rows(db)[field])
    blob[-5] ^= 0x01
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE autoconfig_cache SET blob = ? WHERE field = ?", (bytes(blob), field)
        )


@pytest.fixture(params=[future_model, future_blob_format], ids=["model-version", "blob-format"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """An SQLite cache under KEY: two environments, a filter, a record a newer release wrote
    (``env:newer``) and a tampered one (``env:broken``)."""
    url = f"sqlite://{tmp_path / 'cache.db'}"
    data = {
        "environments": {"e1": env_json("e1", 3), "broken": env_json("broken", 2)},
        "filters": {"f1": filter_json(4)},
    }
    seed(url, data, encryption_key=KEY)

    async def write_newer() -> None:
        async with AutoConfigCache.open(url, cache_key="test", encryption_key=KEY) as cache:
            assert await cache.hook.cache_upsert(record=request.param(cache))

    asyncio.run(write_newer())
    tamper(tmp_path / "cache.db", "env:broken")
    return tmp_path / "cache.db"


def test_drop_undecryptable_keeps_a_newer_release_record_and_reports_it(
    store: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    newer_blob = rows(store)["env:newer"]
    env = store_env(key=NEW_KEY, AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS=KEY)
    result = run_cli(["cache", "rotate-key", "--drop-undecryptable", "--json"], env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dropped"] == ["env:broken"]
    assert summary["keptNewer"] == ["env:newer"]
    assert summary["reencrypted"] == 2
    after = rows(store)
    assert set(after) == {"env:e1", "filter:f1", "env:newer"}
    assert after["env:newer"] == newer_blob
    reloaded = load(f"sqlite://{store}", encryption_key=NEW_KEY, previous=[KEY])
    assert set(reloaded.snapshot.environments) == {"e1"}
    assert [(s.field, s.reason) for s in reloaded.report.skipped] == [
        ("env:newer", "unknown-model-version")
    ]


def test_drop_undecryptable_says_in_text_which_records_it_kept(
    store: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    env = store_env(key=NEW_KEY, AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS=KEY)
    result = run_cli(["cache", "rotate-key", "--drop-undecryptable"], env)
    assert result.returncode == 0, result.stderr
    assert "dropped 1 undecryptable item(s)" in result.stdout
    assert "kept 1 item(s) written by a newer release" in result.stdout
    assert "env:newer" in result.stdout


def test_without_the_flag_a_newer_release_record_stops_the_rotation(
    store: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    # Without the tampered record, the newer one alone is in the way.
    with sqlite3.connect(store) as connection:
        connection.execute("DELETE FROM autoconfig_cache WHERE field = 'env:broken'")
    before = rows(store)
    env = store_env(key=NEW_KEY, AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS=KEY)
    result = run_cli(["cache", "rotate-key"], env)
    assert result.returncode == 1
    assert "newer release" in result.stderr and "env:newer" in result.stderr
    assert "nothing was changed" in result.stderr
    assert rows(store) == before
