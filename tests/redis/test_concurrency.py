"""Many processes on one cache key: 8 writers (separate store objects, separate connections)
with interleaved versions; every field ends at its highest version and never goes back."""

from __future__ import annotations

import asyncio
import random

from autoconfig_cache.records import StoredRecord
from autoconfig_cache_redis import RedisStore
from tests.redis.conftest import StoreMaker
from tests.redis.servers import RedisClusterProcesses, RedisServer

WRITERS = 8
FIELDS = [f"env:shared-{i}" for i in range(20)] + [f"filter:shared-{i}" for i in range(5)]
TOP = 48  # versions 1..TOP; writer w owns the versions v with v % WRITERS == w


def rec(field: str, version: int) -> StoredRecord:
    return StoredRecord(field, version, f"{field}@{version}".encode() * 8)


async def run_writers(stores: list[RedisStore], reader: RedisStore) -> list[str]:
    violations: list[str] = []
    done = asyncio.Event()

    async def writer(index: int, store: RedisStore) -> None:
        rng = random.Random(index)
        plan = [(f, v) for f in FIELDS for v in range(1, TOP + 1) if v % WRITERS == index]
        rng.shuffle(plan)
        mine: dict[str, int] = {}
        for step, (field, version) in enumerate(plan):
            mine[field] = max(mine.get(field, 0), version)
            if step % 7 == 6:  # now and then a whole snapshot (every field, so none deleted)
                first = {f: v for f, v in reversed(plan)}
                await store.cache_set_all([rec(f, mine.get(f, first[f])) for f in FIELDS], False)
            else:
                await store.cache_upsert(rec(field, version))

    async def watch() -> None:
        seen: dict[str, int] = {}
        while not done.is_set():
            for record in await reader.cache_get_all():
                if record.version < seen.get(record.field, 0):
                    violations.append(
                        f"{record.field} went back from {seen[record.field]} to {record.version}"
                    )
                if record.blob != rec(record.field, record.version).blob:
                    violations.append(f"{record.field} v{record.version} has another's blob")
                seen[record.field] = record.version
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(writer(i, s) for i, s in enumerate(stores)))
    done.set()
    await watcher
    return violations


async def check(url: str, make_store: StoreMaker) -> None:
    stores = [make_store(url) for _ in range(WRITERS)]
    reader = make_store(url)
    try:
        violations = await run_writers(stores, reader)
        final = {r.field: r.version for r in await reader.cache_get_all()}
    finally:
        for store in [*stores, reader]:
            await store.cache_close()
    assert violations == []
    assert final == dict.fromkeys(FIELDS, TOP)


async def test_eight_writers_with_interleaved_versions_end_at_the_highest(
    redis_server: RedisServer, make_store: StoreMaker
) -> None:
    await check(redis_server.url, make_store)


async def test_eight_writers_on_a_cluster_end_at_the_highest(
    redis_cluster: RedisClusterProcesses, make_store: StoreMaker
) -> None:
    await check(redis_cluster.url, make_store)
