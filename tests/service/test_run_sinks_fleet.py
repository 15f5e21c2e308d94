"""Delivery records with real processes: a restart from the cache, three instances on one Redis
cache key, and an instance killed mid-delivery (docs/sinks.md, "Outage, restart and fleet")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.demo.data import environment_json
from tests.service.conftest import (
    AUTOCONFIG_KEY,
    ServiceProcess,
    StreamServerProcess,
    initial_data,
    wait_for,
)
from tests.services import require_plugin

Start = Callable[..., ServiceProcess]

ENV_IDS = sorted(initial_data()["environments"])

#: Records one JSON file per run (kind, environment, version, which instance ran it); when the
#: environment is the one named by BLOCK_ENV, it records that it started, then blocks.
HOOK = """\
import json, os, sys, time
record = {
    "kind": os.environ["LDAC_EVENT_KIND"],
    "env": os.environ.get("LDAC_ENV_ID"),
    "version": os.environ.get("LDAC_ENV_VERSION"),
    "instance": os.environ["HOOK_INSTANCE"],
    "pid": os.getpid(),
}
path = os.path.join(os.environ["RECORDS"], f"{time.time_ns():020d}-{os.getpid()}.json")
with open(path + ".tmp", "w") as f:
    json.dump(record, f)
os.rename(path + ".tmp", path)
if record["env"] and record["env"] == os.environ.get("BLOCK_ENV"):
    time.sleep(600)
"""


@pytest.fixture
def hook(tmp_path: Path) -> Path:
    path = tmp_path / "hook.py"
    path.write_text(f"#!{sys.executable}\n{HOOK}")
    path.chmod(0o755)
    (tmp_path / "records").mkdir()
    return path


@pytest.fixture
def orphans(tmp_path: Path) -> Iterator[None]:
    """Hooks left blocking by a killed instance are killed at the end."""
    yield
    for record in runs(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record["pid"], signal.SIGKILL)


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    folder = tmp_path / "records"
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def changes(found: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """How many times each change (kind, environment, version) was run, ``initialized`` aside."""
    return Counter(
        (record["kind"], record["env"], record["version"])
        for record in found
        if record["kind"] != "initialized"
    )


def delivered_marks(database: Path, cache_key: str) -> int:
    """How many changes the delivery records in a SQLite store mark delivered (step 31 of a
    phase: docs/sinks.md, "How a claim works")."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT version FROM autoconfig_cache WHERE cache_key = ?",
            (f"{cache_key}:deliveries",),
        ).fetchall()
    return sum(1 for (version,) in rows if version % 32 == 31)


def initialized_by(found: list[dict[str, Any]], instance: str) -> int:
    return sum(1 for r in found if r["kind"] == "initialized" and r["instance"] == instance)


def hook_env(tmp_path: Path, instance: str, **extra: str) -> dict[str, str]:
    return {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "RECORDS": str(tmp_path / "records"),
        "HOOK_INSTANCE": instance,
        **extra,
    }


def test_a_restart_from_the_cache_delivers_no_change_twice(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start, hook: Path
) -> None:
    store = {
        "STREAM_URI": stream_server.uri,
        "AUTO_CONFIG_CACHE_STORE": f"sqlite:///{tmp_path / 'cache.db'}",
        "AUTO_CONFIG_CACHE_KEY": "fleet",
    }
    first = services({**hook_env(tmp_path, "first"), **store}, "first", args=("--exec", str(hook)))
    first.wait_listening()
    wait_for(lambda: initialized_by(runs(tmp_path), "first") == 1, "the first start's hooks")
    environments = initial_data()["environments"]
    changed = ENV_IDS[0]
    environments[changed] = environment_json(changed, version=2)
    stream_server.control(
        "patch", {"path": f"/environments/{changed}", "data": environments[changed]}
    )
    wait_for(lambda: ("update", changed, "2") in changes(runs(tmp_path)), "the patch's hook")
    first.wait_status(lambda s: s["store"]["lastSuccessfulWrite"], "the patch in the store")
    assert first.stop() == 0

    stream_server.go_down()
    second = services(
        {**hook_env(tmp_path, "second"), **store}, "second", args=("--exec", str(hook))
    )
    second.wait_listening()
    # initialized comes after every change of the cache's configuration: then all are settled.
    wait_for(lambda: initialized_by(runs(tmp_path), "second") == 1, "the restart's hooks")
    assert second.status()["source"] == "cache"
    found = runs(tmp_path)
    assert all(count == 1 for count in changes(found).values()), changes(found)
    assert {r["instance"] for r in found if r["kind"] != "initialized"} == {"first"}
    assert second.stop() == 0


def redis_store_env(port: int, stream: StreamServerProcess) -> dict[str, str]:
    return {
        "STREAM_URI": stream.uri,
        "AUTO_CONFIG_CACHE_STORE": f"redis://127.0.0.1:{port}",
        "AUTO_CONFIG_CACHE_KEY": "fleet-redis",
    }


def test_three_instances_on_one_cache_key_run_each_change_once(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start, hook: Path
) -> None:
    require_plugin("autoconfig_cache_redis")
    from tests.redis.servers import RedisServer

    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        store = redis_store_env(redis.port, stream_server)
        names = ("a", "b", "c")
        fleet = [
            services({**hook_env(tmp_path, name), **store}, name, args=("--exec", str(hook)))
            for name in names
        ]
        for instance in fleet:
            instance.wait_listening()
        wait_for(
            lambda: all(initialized_by(runs(tmp_path), name) >= 1 for name in names),
            "every instance's initialized",
        )
        environments = initial_data()["environments"]
        changed, deleted = ENV_IDS[1], ENV_IDS[2]
        environments[changed] = environment_json(changed, version=2)
        stream_server.control(
            "patch", {"path": f"/environments/{changed}", "data": environments[changed]}
        )
        stream_server.control("delete", {"path": f"/environments/{deleted}", "version": 2})
        wait_for(
            lambda: (
                {("update", changed, "2"), ("delete", deleted, "1")} <= set(changes(runs(tmp_path)))
            ),
            "the patch's and the delete's hooks",
        )
        for instance in fleet:
            assert instance.stop() == 0
        counted = changes(runs(tmp_path))
        assert all(count == 1 for count in counted.values()), counted
        assert sorted(env for kind, env, _ in counted if kind == "insert") == ENV_IDS
    finally:
        redis.kill()


def test_a_change_claimed_by_a_killed_instance_is_run_by_another_after_the_claim_timeout(
    tmp_path: Path,
    stream_server: StreamServerProcess,
    services: Start,
    hook: Path,
    orphans: None,
) -> None:
    store = {
        "STREAM_URI": stream_server.uri,
        "AUTO_CONFIG_CACHE_STORE": f"sqlite:///{tmp_path / 'cache.db'}",
        "AUTO_CONFIG_CACHE_KEY": "fleet-kill",
        "AUTO_CONFIG_CACHE_SINK_CLAIM_TIMEOUT": "2",
    }
    blocked = ENV_IDS[3]
    doomed = services(
        {
            **hook_env(tmp_path, "doomed", BLOCK_ENV=blocked),
            **store,
            "AUTO_CONFIG_CACHE_SINK_TIMEOUT": "600",
        },
        "doomed",
        args=("--exec", str(hook)),
    )
    doomed.wait_listening()
    wait_for(
        lambda: ("insert", blocked, "1") in changes(runs(tmp_path)), "the blocking hook started"
    )
    # Killed once every other insert is marked delivered: only the blocked one is left claimed.
    wait_for(
        lambda: delivered_marks(tmp_path / "cache.db", "fleet-kill") == len(ENV_IDS) - 1,
        "every other insert delivered",
    )
    doomed.stop(signal.SIGKILL)

    survivor = services(
        {**hook_env(tmp_path, "survivor"), **store}, "survivor", args=("--exec", str(hook))
    )
    survivor.wait_listening()
    # The survivor may start from the cache, then get the stream's put: one initialized or two.
    wait_for(
        lambda: (
            ("insert", blocked, "survivor")
            in {(r["kind"], r["env"], r["instance"]) for r in runs(tmp_path)}
            and initialized_by(runs(tmp_path), "survivor") >= 1
        ),
        "the survivor's deliveries",
    )
    found = runs(tmp_path)
    by_change = Counter(
        (r["kind"], r["env"], r["instance"]) for r in found if r["kind"] != "initialized"
    )
    # The blocked insert: started by the killed instance, run again by the survivor only.
    assert by_change[("insert", blocked, "doomed")] == 1
    assert by_change[("insert", blocked, "survivor")] == 1
    # Every other insert was delivered once, by the killed instance, before it died.
    others = [key for key in by_change if key[1] != blocked]
    assert sorted(env for _, env, _ in others) == sorted(set(ENV_IDS) - {blocked})
    assert {instance for _, _, instance in others} == {"doomed"}
    assert "took over" in survivor.log_text()
    assert survivor.stop() == 0
