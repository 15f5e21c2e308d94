"""Benchmark of the scheduled store audit (``autoconfig_cache.audit``) against raw floors.

Run manually: ``.venv/bin/python -m bench.bench_audit [--quick] [--envs N,...] [--json FILE]``. It starts
its own ``redis-server`` and ``moto_server`` on free loopback ports, uses an SQLite file in a
temporary folder, and removes them at the end.

Figures (10,000 environments of ~1 KB by default, ``--envs`` for other sizes, 200 and 1,000 with
``--quick``), for each store, with
``StoreAudit.audit_once`` on a cache that holds the same snapshot as memory:

1. **an audit that finds nothing to do** (the common case: only the ``cache_get_versions`` read
   and the comparison), best of several, vs. the floor: the raw client call that reads the same
   versions on an open connection (Redis ``HGETALL`` of the versions hash; SQLite
   ``SELECT field, version``; DynamoDB the keys-only, eventually consistent ``Query`` pages);
2. **bytes read from the store per audit**: Redis ``INFO stats`` ``total_net_output_bytes``
   before and after (the calibrated cost of the ``INFO`` calls themselves removed); SQLite the
   bytes the process read from the database file (``rchar`` of ``/proc/self/io``: the pages
   SQLite read, through the OS cache or not), each against the same figure for the floor;
3. **DynamoDB read units per audit**: what moto reports with ``ReturnConsumedCapacity=TOTAL``
   (injected into the store's ``Query`` requests) and what AWS would charge by its rule,
   computed from the full size of every item read (a Query is charged on the items' size, not
   on the projected attributes): per Query page, the items' sizes summed, rounded up to 4 KB,
   half a unit per 4 KB for an eventually consistent read;
4. **an audit that finds the store emptied** (``clear``) and writes it back whole (one
   ``set_all`` through the repair callable, as the stream manager does), vs. the floor of
   writing the same encrypted records raw (Redis ``HSET`` of the data and versions hashes in
   one ``MULTI``; SQLite one ``executemany`` ``INSERT`` transaction; DynamoDB
   ``BatchWriteItem``, 25 per request). The DynamoDB store writes with its default
   ``conditional`` mode (one guarded ``PutItem`` per record).
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from autoconfig_cache.audit import AuditResult, StoreAudit
from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.stores.sqlite import _SELECT_FIELD_VERSIONS as SQLITE_VERSIONS_QUERY
from autoconfig_cache.stores.sqlite import TABLE as SQLITE_TABLE
from autoconfig_cache_dynamodb import DynamoDBStore
from autoconfig_cache_redis.layout import versions_key
from bench.bench_dynamodb import REGION, create_table, item_bytes, raw_client, start_moto
from bench.bench_redis import start_redis_for_bench
from bench.common import (
    Result,
    arguments,
    at_size,
    best_of_async,
    emit,
    environment_json,
    envs_label,
    sizes,
)

ENCRYPTION_KEY = "bench-encryption-key-0123456789"
CACHE_KEY = "bench-audit"
DYNAMO_TABLE = "autoconfig-audit-bench"
REPEATS = 7
#: The issue asks for the audit's cost at 10,000 items; ``--envs`` measures other sizes.
DEFAULT_SIZES = (10_000,)
#: Repairs on moto write every record with one request each: slow, so fewer rounds.
DYNAMO_REPAIR_REPEATS = 1
#: AWS: one read unit covers 4 KB read strongly consistent; eventually consistent costs half.
READ_UNIT_BYTES = 4096
EVENTUAL_UNIT = 0.5


def make_snapshot(count: int) -> Snapshot:
    return Snapshot(
        environments={
            f"env-{i:05}": Environment.from_json(environment_json(f"env-{i:05}"))
            for i in range(count)
        }
    )


def make_audit(cache: AutoConfigCache, snapshot: Snapshot) -> StoreAudit:
    """An audit of ``cache`` whose memory is ``snapshot``; its repair is the stream manager's
    full write (``set_all``) for an emptied store, the only repair this benchmark provokes."""

    async def repair(fields: Sequence[str] | None) -> int | None:
        if fields is not None:
            raise AssertionError(f"unexpected partial repair of {len(fields)} field(s)")
        await cache.set_all(snapshot)
        return len(snapshot)

    return StoreAudit(cache, lambda: snapshot, repair, interval=30.0)


async def audit_ok(audit: StoreAudit) -> None:
    result = await audit.audit_once()
    assert result is AuditResult.OK, (result, audit.status())


async def emptied_then(
    prepare: Callable[[], Awaitable[None]], run: Callable[[], Awaitable[Any]], repeats: int
) -> float:
    """Best time of ``run`` over ``repeats`` rounds, each after an untimed ``prepare``."""
    best = math.inf
    for _ in range(repeats):
        await prepare()
        start = time.perf_counter()
        await run()
        best = min(best, time.perf_counter() - start)
    return best


async def audit_repairs(audit: StoreAudit) -> None:
    result = await audit.audit_once()
    assert result is AuditResult.REPAIRED, (result, audit.status())


def time_results(store: str, count: int, ok: float, floor: float, floor_name: str) -> Result:
    return Result(
        f"audit, nothing differs, {store}, {count} items: time",
        ok * 1000,
        "ms",
        floor * 1000,
        floor_name,
        "-",
    )


def repair_result(store: str, count: int, repair: float, floor: float, floor_name: str) -> Result:
    return Result(
        f"audit, store emptied, {store}, {count} items: repair time",
        repair * 1000,
        "ms",
        floor * 1000,
        floor_name,
        "-",
        notes="one audit: versions read, then set_all of the whole snapshot (encryption "
        "included); the floor writes records already encrypted",
    )


# -- Redis --------------------------------------------------------------------------------------


class OutputBytes:
    """Bytes the Redis server sent (``total_net_output_bytes``), less the INFO calls' own."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.overhead = 0

    async def read(self) -> int:
        stats = await self.client.info("stats")
        return int(stats["total_net_output_bytes"])

    async def calibrate(self) -> None:
        """The delta two INFO calls with nothing between them show: their own replies."""
        before = await self.read()
        self.overhead = await self.read() - before

    async def around(self, run: Callable[[], Awaitable[Any]]) -> int:
        before = await self.read()
        await run()
        return await self.read() - before - self.overhead


async def bench_redis(count: int, snapshot: Snapshot) -> list[Result]:
    directory = Path(tempfile.mkdtemp(prefix="bench-audit-redis-"))
    process, port = start_redis_for_bench(directory)
    results: list[Result] = []
    try:
        url = f"redis://127.0.0.1:{port}"
        raw = aioredis.Redis(port=port)
        counter = OutputBytes(aioredis.Redis(port=port))
        await counter.calibrate()
        versions = versions_key(CACHE_KEY)
        async with AutoConfigCache.open(
            url, cache_key=CACHE_KEY, encryption_key=ENCRYPTION_KEY
        ) as cache:
            await cache.set_all(snapshot)
            audit = make_audit(cache, snapshot)
            await audit_ok(audit)  # connects, as in a long-running instance

            async def floor_read() -> None:
                # count + 1: the hash also holds the store's generation counter.
                assert len(await raw.hgetall(versions)) == count + 1

            await floor_read()
            best = {"audit": math.inf, "floor": math.inf}
            for _ in range(REPEATS):  # interleaved: both see the same machine load
                best["audit"] = min(best["audit"], await best_of_async(1, lambda: audit_ok(audit)))
                best["floor"] = min(best["floor"], await best_of_async(1, floor_read))
            floor_name = "raw HGETALL of the versions hash"
            results.append(time_results("Redis", count, best["audit"], best["floor"], floor_name))
            audit_bytes = await counter.around(lambda: audit_ok(audit))
            floor_bytes = await counter.around(floor_read)
            results.append(
                Result(
                    f"audit, nothing differs, Redis, {count} items: bytes read",
                    audit_bytes,
                    "B",
                    floor_bytes,
                    floor_name,
                    "-",
                    notes="total_net_output_bytes; the audit's read is MULTI HKEYS data, "
                    "HGETALL versions, HKEYS tombstones, EXEC (the field names come twice)",
                )
            )

            records = await cache.get_records()

            async def floor_write() -> None:
                async with raw.pipeline(transaction=True) as pipe:
                    pipe.hset(CACHE_KEY, mapping={r.field: r.blob for r in records})
                    pipe.hset(versions, mapping={r.field: r.version for r in records})
                    await pipe.execute()

            repair = await emptied_then(cache.clear, lambda: audit_repairs(audit), REPEATS)
            floor = await emptied_then(cache.clear, floor_write, REPEATS)
            results.append(
                repair_result(
                    "Redis", count, repair, floor, "raw MULTI HSET data + HSET versions EXEC"
                )
            )
        await raw.aclose()
        await counter.client.aclose()
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)
    return results


# -- SQLite -------------------------------------------------------------------------------------


def bytes_read_by_process() -> int:
    """``rchar`` of ``/proc/self/io``: bytes every thread of this process has read so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


async def read_bytes_around(run: Callable[[], Awaitable[Any]]) -> int:
    before = bytes_read_by_process()
    await run()
    return bytes_read_by_process() - before


def column_bytes(rows: Iterable[Sequence[object]]) -> int:
    """Bytes of the values of ``rows``: UTF-8 text and blobs by length, integers as 8."""
    total = 0
    for row in rows:
        for value in row:
            if isinstance(value, str):
                total += len(value.encode())
            elif isinstance(value, bytes):
                total += len(value)
            else:
                total += 8
    return total


async def bench_sqlite(count: int, snapshot: Snapshot) -> list[Result]:
    directory = Path(tempfile.mkdtemp(prefix="bench-audit-sqlite-"))
    path = directory / "audit.db"
    results: list[Result] = []
    try:
        raw = sqlite3.connect(path)
        # As the store commits (WAL, synchronous=NORMAL), so that the floor pays the same syncs.
        raw.execute("PRAGMA synchronous = NORMAL")
        select = f"SELECT field, version FROM {SQLITE_TABLE} WHERE cache_key = ?"
        async with AutoConfigCache.open(
            f"sqlite://{path}", cache_key=CACHE_KEY, encryption_key=ENCRYPTION_KEY
        ) as cache:
            await cache.set_all(snapshot)
            audit = make_audit(cache, snapshot)
            await audit_ok(audit)

            async def floor_read() -> None:
                assert len(raw.execute(select, (CACHE_KEY,)).fetchall()) == count

            await floor_read()
            best = {"audit": math.inf, "floor": math.inf}
            for _ in range(REPEATS):
                best["audit"] = min(best["audit"], await best_of_async(1, lambda: audit_ok(audit)))
                best["floor"] = min(best["floor"], await best_of_async(1, floor_read))
            floor_name = "raw SELECT field, version"
            results.append(time_results("SQLite", count, best["audit"], best["floor"], floor_name))
            file_bytes = await read_bytes_around(lambda: audit_ok(audit))
            floor_file_bytes = await read_bytes_around(floor_read)
            # SQLite returns no byte count of its own: the columns the store's query and the
            # floor's return (text bytes, 8 per integer), the same read made again raw.
            audit_bytes = column_bytes(raw.execute(SQLITE_VERSIONS_QUERY, (CACHE_KEY,)))
            floor_bytes = column_bytes(raw.execute(select, (CACHE_KEY,)))
            results.append(
                Result(
                    f"audit, nothing differs, SQLite, {count} items: bytes read",
                    audit_bytes,
                    "B",
                    floor_bytes,
                    floor_name,
                    "-",
                    notes="bytes of the columns read (the audit's query is SELECT field, "
                    "version, typeof(blob)); from the file (/proc/self/io rchar) the audit read "
                    f"{file_bytes} B and the floor {floor_file_bytes} B: pages SQLite's page "
                    "cache did not hold (rows of ~1.2 KB sit whole in their table pages, so "
                    "any read of field and version reads every page it does not hold)",
                )
            )

            rows = [(CACHE_KEY, r.field, r.version, r.blob) for r in await cache.get_records()]
            insert = f"INSERT INTO {SQLITE_TABLE} VALUES (?, ?, ?, ?)"

            async def floor_write() -> None:
                with raw:
                    raw.executemany(insert, rows)

            repair = await emptied_then(cache.clear, lambda: audit_repairs(audit), REPEATS)
            floor = await emptied_then(cache.clear, floor_write, REPEATS)
            results.append(
                repair_result(
                    "SQLite", count, repair, floor, "raw executemany INSERT, one transaction"
                )
            )
        raw.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return results


# -- DynamoDB on moto ---------------------------------------------------------------------------


class QueryMeter:
    """Counts a DynamoDB store's Query requests and the read units moto reports for them (by
    wrapping PynamoDB's ``dispatch``, asking each Query for ``ReturnConsumedCapacity=TOTAL``),
    and keeps the keys each page returned, for the units computed by AWS's rule."""

    def __init__(self, store: DynamoDBStore) -> None:
        self.requests = 0
        self.reported = 0.0
        self.reported_any = False
        self.pages: list[list[str]] = []
        original: Callable[[str, dict[str, Any]], dict[str, Any]] = store.connection.dispatch

        def dispatch(operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
            if operation != "Query":
                return original(operation, kwargs)
            kwargs = {**kwargs, "ReturnConsumedCapacity": "TOTAL"}
            data = original(operation, kwargs)
            self.requests += 1
            consumed = data.get("ConsumedCapacity")
            if isinstance(consumed, dict) and "CapacityUnits" in consumed:
                self.reported_any = True
                self.reported += float(consumed["CapacityUnits"])
            self.pages.append([item["key"]["S"] for item in data.get("Items", [])])
            return data

        store.connection.dispatch = dispatch  # type: ignore[method-assign,assignment]

    def reset(self) -> None:
        self.requests = 0
        self.reported = 0.0
        self.reported_any = False
        self.pages = []


def query_pages(client: Any, *, keys_only: bool) -> list[dict[str, Any]]:
    """Raw Query pages of the cache key: keys-only eventually consistent (the audit's read) or
    whole items strongly consistent; each page as DynamoDB returned it."""
    kwargs: dict[str, Any] = {
        "TableName": DYNAMO_TABLE,
        "KeyConditionExpression": "#ns = :ns",
        "ExpressionAttributeNames": {"#ns": "namespace"},
        "ExpressionAttributeValues": {":ns": {"S": CACHE_KEY}},
        "ConsistentRead": not keys_only,
        "ReturnConsumedCapacity": "TOTAL",
    }
    if keys_only:
        kwargs["ProjectionExpression"] = "#k, #v, #t"
        kwargs["ExpressionAttributeNames"].update({"#k": "key", "#v": "version", "#t": "tombstone"})
    pages = []
    while True:
        page = client.query(**kwargs)
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def computed_units(pages: Sequence[Sequence[str]], sizes: dict[str, int]) -> float:
    """Read units of eventually consistent Query pages by AWS's rule: per request, the full
    sizes of the items read summed and rounded up to 4 KB, half a unit per 4 KB."""
    return sum(
        math.ceil(sum(sizes[key] for key in page) / READ_UNIT_BYTES) * EVENTUAL_UNIT
        for page in pages
        if page
    )


def batch_write(client: Any, items: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {
            DYNAMO_TABLE: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        }
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


async def bench_dynamodb(count: int, snapshot: Snapshot) -> list[Result]:
    process, endpoint = start_moto()
    results: list[Result] = []
    try:
        create_table(endpoint, DYNAMO_TABLE)
        client = raw_client(endpoint)
        cache = AutoConfigCache.open(
            f"dynamodb://{DYNAMO_TABLE}?region={REGION}&endpoint={endpoint}",
            cache_key=CACHE_KEY,
            encryption_key=ENCRYPTION_KEY,
            registry=PluginRegistry(),
            # moto takes well over the default 30 s to write 10,000 records one by one.
            options={"timeout": "900"},
        )
        try:
            await cache.set_all(snapshot)
            assert isinstance(cache.store, DynamoDBStore)
            meter = QueryMeter(cache.store)
            audit = make_audit(cache, snapshot)
            await audit_ok(audit)

            def floor_read() -> None:
                pages = query_pages(client, keys_only=True)
                assert sum(len(page["Items"]) for page in pages) == count

            async def floor_read_async() -> None:
                floor_read()

            floor_read()
            best = {"audit": math.inf, "floor": math.inf}
            for _ in range(max(3, REPEATS // 2)):  # moto is slow: fewer rounds
                best["audit"] = min(best["audit"], await best_of_async(1, lambda: audit_ok(audit)))
                best["floor"] = min(best["floor"], await best_of_async(1, floor_read_async))
            floor_name = "raw keys-only Query pages, eventually consistent"
            results.append(
                time_results("DynamoDB (moto)", count, best["audit"], best["floor"], floor_name)
            )

            # Read units: one audit measured, against the floor's own keys-only Query.
            meter.reset()
            await audit_ok(audit)
            full = query_pages(client, keys_only=False)
            sizes = {item["key"]["S"]: item_bytes(item) for page in full for item in page["Items"]}
            computed = computed_units(meter.pages, sizes)
            floor_pages = query_pages(client, keys_only=True)
            floor_computed = computed_units(
                [[item["key"]["S"] for item in page["Items"]] for page in floor_pages], sizes
            )
            floor_reported = [page.get("ConsumedCapacity", {}) for page in floor_pages]
            total_kb = sum(sizes.values()) / 1024
            reported = (
                f"moto reported {meter.reported:g} units for the audit's {meter.requests} "
                f"Query request(s) and "
                f"{sum(float(c.get('CapacityUnits', 0)) for c in floor_reported):g} for the "
                "floor's"
                if meter.reported_any
                else "moto reported no ConsumedCapacity"
            )
            results.append(
                Result(
                    f"audit, nothing differs, DynamoDB, {count} items: read units",
                    computed,
                    "RCU",
                    floor_computed,
                    "raw keys-only Query, eventually consistent",
                    "-",
                    notes=f"computed by AWS's rule from the items' full sizes ({total_kb:,.0f} KB "
                    f"over {len(meter.pages)} page(s); {total_kb:,.0f} KB / 4 KB x 0.5 = "
                    f"{total_kb / 4 * 0.5:,.0f} before per-page rounding); {reported}",
                )
            )

            items = [item for page in full for item in page["Items"]]

            async def floor_write() -> None:
                batch_write(client, items)

            repair = await emptied_then(
                cache.clear, lambda: audit_repairs(audit), DYNAMO_REPAIR_REPEATS
            )
            floor = await emptied_then(cache.clear, floor_write, DYNAMO_REPAIR_REPEATS)
            results.append(
                repair_result(
                    "DynamoDB (moto)", count, repair, floor, "raw BatchWriteItem, 25 per request"
                )
            )
        finally:
            await cache.close()
    finally:
        process.kill()
        process.wait()
    return results


async def run(count: int) -> list[Result]:
    snapshot = make_snapshot(count)
    results = await bench_redis(count, snapshot)
    results += await bench_sqlite(count, snapshot)
    results += await bench_dynamodb(count, snapshot)
    return results


def main() -> None:
    args = arguments(__doc__ or "")
    # Each provoked repair logs a warning (the store lost every record): noise here.
    logging.getLogger("autoconfig_cache.audit").setLevel(logging.ERROR)
    results: list[Result] = []
    for count in sizes(args, DEFAULT_SIZES):
        start = time.monotonic()
        results += at_size(asyncio.run(run(count)), count)
        print(f"bench_audit: {envs_label(count)} in {time.monotonic() - start:.0f} s", flush=True)
    emit(results, args.json)


if __name__ == "__main__":
    main()
