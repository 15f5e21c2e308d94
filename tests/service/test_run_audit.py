"""``autoconfig-cache run`` repairs an SQLite cache that lost its data, with no stream event.

Real processes: the local stream server and a ``run`` instance, whose SQLite file is cleared or
changed behind its back (the Redis scenarios are in ``test_run_audit_redis.py``). The instance
audits every second (``AUTO_CONFIG_CACHE_AUDIT_INTERVAL=1``); the stream stays quiet after its
first ``put``, so only the audit can bring the data back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.demo.data import environment_json
from autoconfig_cache.models import Environment
from tests.cli.conftest import load, run_cli
from tests.secret_values import known_secret
from tests.service.conftest import (
    AUTOCONFIG_KEY,
    ServiceProcess,
    StreamServerProcess,
    initial_data,
    wait_for,
)

Start = Callable[..., ServiceProcess]

ENCRYPTION_KEY = known_secret("enc-5f1e2d3c-audit-instance-key")
OTHER_KEY = known_secret("enc-9a8b7c6d-another-instance-key")
#: Items of initial_data(): six environments and two filters.
ITEMS = 8


def audits(status: dict[str, Any]) -> int:
    count: int = status["audit"]["audits"]
    return count


def ready_and_written(status: dict[str, Any]) -> bool:
    return bool(status["ready"] and status["store"]["lastSuccessfulWrite"])


def wait_audited(service: ServiceProcess, after: int, what: str) -> dict[str, Any]:
    """Wait until ``service`` has finished an audit after its ``after``-th, and return /status."""
    return service.wait_status(lambda s: audits(s) > after, what)


# ---------------------------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------------------------


def sqlite_env(path: Path, stream: StreamServerProcess) -> dict[str, str]:
    return {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream.uri,
        "AUTO_CONFIG_CACHE_STORE": f"sqlite://{path}",
        "AUTO_CONFIG_CACHE_KEY": "audit-sqlite",
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "AUTO_CONFIG_CACHE_AUDIT_INTERVAL": "1",
    }


def sqlite_rows(path: Path) -> dict[str, tuple[int, bytes]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT field, version, blob FROM autoconfig_cache WHERE cache_key = 'audit-sqlite'"
        ).fetchall()
    return {field: (version, blob) for field, version, blob in rows}


def test_an_sqlite_cache_cleared_behind_a_running_instance_is_written_back(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    path = tmp_path / "cache.db"
    env = sqlite_env(path, stream_server)
    service = services(env).wait_listening()
    status = service.wait_status(ready_and_written, "the put written")
    assert status["audit"]["intervalSeconds"] == 1.0
    before = sqlite_rows(path)
    assert len(before) == ITEMS

    cleared = run_cli(["cache", "clear", "--yes"], env)
    assert cleared.returncode == 0, cleared.stderr
    wait_for(lambda: len(sqlite_rows(path)) == ITEMS, "the audit to write the cache back")

    assert {field: version for field, (version, _) in sqlite_rows(path).items()} == {
        field: version for field, (version, _) in before.items()
    }
    loaded = load(f"sqlite://{path}", encryption_key=ENCRYPTION_KEY, cache_key="audit-sqlite")
    assert loaded.report.skipped == () and len(loaded.snapshot) == ITEMS
    status = service.wait_status(
        lambda s: s["audit"]["repairedTotal"] >= ITEMS, "the repair counted"
    )
    assert status["audit"]["lastError"] is None
    assert service.stop() == 0
    assert "store audit: the store had lost 8 record(s)" in service.log_text()


def test_a_record_under_another_key_is_reported_and_never_overwritten(
    tmp_path: Path, services: Start
) -> None:
    data = initial_data()
    env_id = next(iter(data["environments"]))
    data["environments"][env_id] = environment_json(env_id, version=3)
    stream = StreamServerProcess(tmp_path, data)
    try:
        path = tmp_path / "cache.db"
        service = services(sqlite_env(path, stream)).wait_listening()
        service.wait_status(ready_and_written, "the put written")
        # Another instance, mid key rotation, wrote an older version under a key this one lacks.
        other = AutoConfigCache(
            None, cache_key="audit-sqlite", keys=KeyRing.from_strings(OTHER_KEY)
        )
        foreign = other.codec.encode(Environment.from_json(environment_json(env_id, version=2)))
        with sqlite3.connect(path) as conn:
            conn.execute(
                "UPDATE autoconfig_cache SET version = ?, blob = ? "
                "WHERE cache_key = 'audit-sqlite' AND field = ?",
                (foreign.version, foreign.blob, foreign.field),
            )
        status = service.wait_status(
            lambda s: s["audit"]["found"]["foreign"] == 1, "the foreign record reported"
        )
        [entry] = status["audit"]["foreign"]
        assert entry["field"] == foreign.field and "not configured" in entry["reason"]
        # Later audits keep leaving it alone.
        wait_audited(service, audits(status) + 2, "two more audits")
        assert sqlite_rows(path)[foreign.field] == (foreign.version, foreign.blob)
        assert service.stop() == 0
        assert "left as they are" in service.log_text()
    finally:
        stream.stop()
