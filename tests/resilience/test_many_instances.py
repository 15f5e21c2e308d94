"""Scenario 1: three ``run`` processes share one Redis cache key and one stream.

The stream sends 1,000 patches and deletes whose versions interleave: some are stale (a lower
version than already seen), some delete, some re-create deleted items at a higher version, some
arrive after a delete at an older version (which must not resurrect the item). Every instance
writes every change it accepts, so each field is written three times, concurrently.

The store is sampled all along by decoding the raw hash; a field's version must never go down.
At the end, the store and every instance hold exactly the state the ordering rules give.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoconfig_cache.records import ItemKind, StoredRecord
from tests.resilience.conftest import (
    CACHE_KEY,
    LeakWatch,
    Model,
    Versions,
    WatchedService,
    assert_no_leak,
    converge,
    diff,
    open_cache,
    put_data,
    record_figures,
    send,
    service_env,
    snapshot_versions,
    store_versions,
    versions_of,
)
from tests.service.conftest import StreamServerProcess
from tests.services import require_plugin

require_plugin("autoconfig_cache_redis")
from autoconfig_cache_redis.layout import versions_key
from tests.redis.servers import RedisServer

EVENTS = 1_000
ENVIRONMENTS = 40
FILTERS = 10
INSTANCES = 3


class StoreSampler(threading.Thread):
    """Decodes the Redis hash over and over and notes any field whose version went down."""

    def __init__(self, redis: RedisServer) -> None:
        super().__init__(daemon=True)
        self.redis = redis
        self.cache = open_cache(redis.url)  # used only to decode; it never connects
        self.stop = threading.Event()
        self.highest: Versions = {}
        self.deleted_at: Versions = {}
        #: (field, highest version seen before, version seen now)
        self.regressions: list[tuple[str, int, int]] = []
        self.samples = 0
        self.undecodable = 0

    def run(self) -> None:
        with self.redis.client() as client:
            while not self.stop.is_set():
                # Both hashes in one MULTI, so blobs and versions are from the same moment.
                with client.pipeline(transaction=True) as pipe:
                    pipe.hgetall(CACHE_KEY)
                    pipe.hgetall(versions_key(CACHE_KEY))
                    blobs, versions = pipe.execute()
                records = [
                    StoredRecord(field.decode(), int(versions.get(field, 0)), blob)
                    for field, blob in blobs.items()
                ]
                result = self.cache.decode_records(records)
                self.undecodable += len(result.report.skipped)
                current = snapshot_versions(result.snapshot)
                for field, version in current.items():
                    if version <= self.deleted_at.get(field, 0) or version < self.highest.get(
                        field, 0
                    ):
                        self.regressions.append((field, self.highest.get(field, 0), version))
                    self.highest[field] = max(version, self.highest.get(field, 0))
                # A tombstone at version d means every item version <= d is gone for good.
                for tombstone in result.snapshot.tombstones:
                    field = f"{tombstone.kind.field_prefix}:{tombstone.item_id}"
                    self.deleted_at[field] = max(tombstone.version, self.deleted_at.get(field, 0))
                self.samples += 1
                time.sleep(0.02)


def events(model: Model, rng: random.Random) -> list[tuple[str, int, bool]]:
    """1,000 (field, version, is_delete) with interleaved versions, planned on a scratch model
    so that stale events really are stale when they are sent."""
    fields = list(model.live)
    plan = Model(dict(model.live))
    planned: list[tuple[str, int, bool]] = []
    for _ in range(EVENTS):
        field = rng.choice(fields)
        latest = plan.latest(field)
        roll = rng.random()
        if roll < 0.55:  # a newer version (an insert if the item was deleted)
            event = (field, latest + rng.choice((1, 1, 2, 3)), False)
        elif roll < 0.75:  # stale: same or older version, also after a delete
            event = (field, max(1, latest - rng.randint(0, 3)), False)
        elif roll < 0.9:  # a delete at a newer version
            event = (field, latest + rng.choice((1, 2)), True)
        else:  # a stale delete
            event = (field, max(1, latest - rng.randint(0, 2)), True)
        field, version, delete = event
        (plan.delete if delete else plan.upsert)(field, version)
        planned.append(event)
    return planned


def test_three_instances_on_one_cache_key_converge_and_no_item_ever_goes_back(
    tmp_path: Path,
    stream_factory: Callable[..., StreamServerProcess],
    services: Callable[..., WatchedService],
    watch: LeakWatch,
) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        data = put_data(ENVIRONMENTS, FILTERS)
        stream = stream_factory(data)
        env = service_env(stream.uri, redis.url)
        instances = [services(env, f"instance{i}").wait_listening() for i in range(INSTANCES)]
        for instance in instances:
            instance.wait_status(
                lambda s: s["ready"] and s["store"]["lastSuccessfulWrite"], "ready and written"
            )
        assert store_versions(redis.url) == versions_of(data)

        model = Model(versions_of(data))
        planned = events(model, random.Random(20261128))
        sampler = StoreSampler(redis)
        sampler.start()
        started = time.monotonic()
        for field, version, delete in planned:
            send(stream, model, field, version, delete)
        sent_in = time.monotonic() - started

        expected = model.live
        last: dict[str, Any] = {}

        def converged() -> bool:
            last["store"] = store_versions(redis.url) or {}
            last["instances"] = [instance.versions() for instance in instances]
            return last["store"] == expected and all(v == expected for v in last["instances"])

        seconds = converge(converged, timeout=60)
        # A few more samples after convergence, so a late write cannot slip past the sampler.
        time.sleep(0.3)
        sampler.stop.set()
        sampler.join(timeout=10)

        statuses = [instance.status() for instance in instances]
        figures = {
            "instances": INSTANCES,
            "items": len(versions_of(data)),
            "events_sent": len(planned),
            "events_accepted": model.accepted,
            "events_ignored_stale": model.ignored,
            "send_seconds": round(sent_in, 2),
            "store_samples": sampler.samples,
            "regressions": len(sampler.regressions),
            "tombstones_in_store": len(sampler.deleted_at),
            "seconds_to_converge_after_last_event": None if seconds is None else round(seconds, 2),
            "updates_lost": len(diff(expected, last.get("store", {}))),
            "store_errors": [s["store"]["errorCount"] for s in statuses],
        }
        # The ciphertext in Redis holds no key either (stores never see plaintext).
        with redis.client() as client:
            raw = b"".join(client.hvals(CACHE_KEY))
        figures["plaintext_in_store"] = sum(
            1 for status in statuses for env_id in status["environments"] if env_id.encode() in raw
        )
        for instance in instances:
            assert instance.stop() == 0
        assert_no_leak(watch, figures)
        record_figures("1 many instances, one cache key (redis)", figures)

        assert model.ignored > 100 and model.accepted > 500  # the interleaving really happened
        assert sampler.samples > 10
        # No item ever goes back: neither a live item to an older version, nor a deleted item
        # to a version at or below its deletion (the stores keep tombstones).
        assert sampler.regressions == []
        assert sampler.undecodable == 0
        assert seconds is not None, diff(expected, last.get("store", {}))
        assert figures["updates_lost"] == 0
        assert figures["plaintext_in_store"] == 0
    finally:
        redis.kill()


async def test_a_deleted_item_is_not_resurrected_by_a_lagging_writer(
    tmp_path: Path,
) -> None:
    """What instance B does when it is behind instance A in the stream: A has applied
    ``patch v14; delete v16`` and B now applies ``patch v11``. The store must not hold v11 again.
    """
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        from autoconfig_cache.models import Environment
        from tests.resilience.conftest import environment

        async with open_cache(redis.url) as a, open_cache(redis.url) as b:
            item_id = "000000000000000000000013"
            assert await a.upsert(Environment.from_json(environment(item_id, 14)))
            assert await a.delete(ItemKind.ENVIRONMENT, item_id, 16)
            await b.upsert(Environment.from_json(environment(item_id, 11)))
            held = snapshot_versions((await a.get_all()).snapshot)
        assert held.get(f"env:{item_id}") is None, held
    finally:
        redis.kill()
