"""Scenario 5: a corruption campaign on the stored blobs, made with the store's raw client.

A ``run`` process fills the cache from the stream. Then N random blobs are damaged directly in
the store: a third get one bit flipped, a third are truncated, and a third are swapped in pairs
(each blob moved to another item's field; the ``v2`` format binds a blob to its field, so both
fail). With the stream down, a fresh ``run`` process must report exactly those N as skipped
(each with a reason), serve all the others, and ``cache verify`` must exit non-zero naming
exactly them. When the stream returns, its put rewrites the damaged items and ``verify`` passes.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from autoconfig_cache.report import SkipReason
from tests.resilience.conftest import (
    CACHE_KEY,
    LeakWatch,
    WatchedService,
    assert_no_leak,
    put_data,
    record_figures,
    service_env,
    status_versions,
    versions_of,
)
from tests.service.conftest import StreamServerProcess, wait_for
from tests.services import require_plugin

CORRUPTED = 12  # 4 bit flips, 4 truncations, 2 swapped pairs


class RawBlobs(Protocol):
    """Direct access to the stored blobs, bypassing the library."""

    url: str

    def read(self) -> dict[str, bytes]: ...
    def write(self, field: str, blob: bytes) -> None: ...
    def close(self) -> None: ...


class SqliteBlobs:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "cache.db"
        self.url = f"sqlite://{self.path}"

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def read(self) -> dict[str, bytes]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT field, blob FROM autoconfig_cache WHERE cache_key = ?", (CACHE_KEY,)
            )
            return {field: bytes(blob) for field, blob in rows}

    def write(self, field: str, blob: bytes) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE autoconfig_cache SET blob = ? WHERE cache_key = ? AND field = ?",
                (blob, CACHE_KEY, field),
            )

    def close(self) -> None:
        pass


class RedisBlobs:
    def __init__(self, directory: Path) -> None:
        require_plugin("autoconfig_cache_redis")
        from tests.redis.servers import RedisServer

        self.server = RedisServer(directory / "redis")
        self.server.start()
        self.url = self.server.url

    def read(self) -> dict[str, bytes]:
        with self.server.client() as client:
            return {k.decode(): v for k, v in client.hgetall(CACHE_KEY).items()}

    def write(self, field: str, blob: bytes) -> None:
        with self.server.client() as client:
            client.hset(CACHE_KEY, field, blob)

    def close(self) -> None:
        self.server.kill()


@pytest.fixture(params=["sqlite", "redis"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RawBlobs]:
    made: RawBlobs = SqliteBlobs(tmp_path) if request.param == "sqlite" else RedisBlobs(tmp_path)
    yield made
    made.close()


def corrupt(blobs: RawBlobs, rng: random.Random) -> dict[str, str]:
    """Damage CORRUPTED random blobs; returns field -> what was done to it."""
    stored = blobs.read()
    chosen = rng.sample(sorted(stored), CORRUPTED)
    done: dict[str, str] = {}
    for field in chosen[:4]:
        blob = bytearray(stored[field])
        position = rng.randrange(len(blob))
        blob[position] ^= 1 << rng.randrange(8)
        blobs.write(field, bytes(blob))
        done[field] = f"bit flipped at byte {position}"
    for field in chosen[4:8]:
        length = rng.randrange(len(stored[field]))
        blobs.write(field, stored[field][:length])
        done[field] = f"truncated to {length} bytes"
    for first, second in zip(chosen[8::2], chosen[9::2], strict=True):
        blobs.write(first, stored[second])
        blobs.write(second, stored[first])
        done[first] = f"swapped with {second}"
        done[second] = f"swapped with {first}"
    return done


def test_corrupted_blobs_are_skipped_exactly_and_named_by_verify(
    blobs: RawBlobs,
    stream_factory: Callable[..., StreamServerProcess],
    services: Callable[..., WatchedService],
    watch: LeakWatch,
) -> None:
    data = put_data(100, 10)
    stream = stream_factory(data)
    env = service_env(stream.uri, blobs.url)
    writer = services(env, "writer").wait_listening()
    writer.wait_status(lambda s: s["ready"] and s["store"]["lastSuccessfulWrite"], "written")
    assert writer.stop() == 0

    damage = corrupt(blobs, random.Random(5))
    stream.go_down()
    reader = services(env, "reader").wait_listening()
    wait_for(lambda: reader.get("/readyz")[0] == 200, "ready from the damaged cache", 60)
    status = reader.status()
    skipped = {item["field"]: item["reason"] for item in status["cache"]["load"]["skipped"]}
    explained = all(item["message"] for item in status["cache"]["load"]["skipped"])
    served = status_versions(status)
    intact = {f: v for f, v in versions_of(data).items() if f not in damage}

    verify = watch.cli(["cache", "verify", "--json"], env)
    report = json.loads(verify.stdout)
    named = {problem["field"]: problem["reason"] for problem in report["problems"]}
    verify_text = watch.cli(["cache", "verify"], env)  # the table an operator reads

    stream.come_back()
    reader.wait_status(lambda s: s["source"] == "stream", "the stream's put", 60)
    wait_for(
        lambda: watch.cli(["cache", "verify", "--json"], env).returncode == 0,
        "the put to rewrite the damaged items",
        60,
    )

    figures: dict[str, Any] = {
        "store": blobs.url.split(":", 1)[0],
        "items": len(versions_of(data)),
        "corrupted": len(damage),
        "skipped_on_load": len(skipped),
        "skip_reasons": sorted(set(skipped.values())),
        "served": len(served),
        "verify_exit": verify.returncode,
        "verify_named": len(named),
        "verify_exit_after_stream_put": 0,
    }
    assert reader.stop() == 0
    assert_no_leak(watch, figures)
    record_figures(f"5 corruption campaign ({figures['store']})", figures)

    assert set(skipped) == set(damage), (skipped, damage)
    assert set(skipped.values()) <= {str(reason) for reason in SkipReason}
    assert explained
    assert served == intact
    assert status["source"] == "cache"
    assert verify.returncode == 1
    assert set(named) == set(damage)
    assert verify_text.returncode == 1
    assert all(field in verify_text.stdout for field in damage)
