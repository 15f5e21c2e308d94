"""Benchmark of the DynamoDB store against floors measured in the same run, on one moto server.

Run manually: ``.venv/bin/python -m bench.bench_dynamodb [--quick] [--envs 1000,10000]
[--json out.jsonl]``. At each size it starts its own ``moto_server`` on a free loopback port and
kills it after. By default it runs at 1,000 and 10,000 environments of ~1 KB, not 100,000:
moto, an emulator in Python, takes many minutes to write and read 100,000 items, and its times
say little about AWS anyway (``--envs 100000`` runs it).

Figures, at each size:

1. cold ``get_all`` through the cache facade (``relay`` and ``v2`` formats: a new store, table
   check, paginated consistent Query, decrypt, parse into models) vs. the floor: raw botocore
   Query pages of the same items (consistent reads) + AES-GCM decrypt + ``json.loads``, on a
   new client;
2. store-level ``cache_get_all`` vs. the raw botocore Query pages alone;
3. a ``put`` in which 1 of N environments changed, through the facade (default
   ``conditional`` write mode, and ``batch`` mode): write requests, items written and write
   units, vs. the Relay Proxy's full rewrite (BatchWriteItem of every item, 25 per request).
   Requests are counted by wrapping PynamoDB's ``dispatch``; write units are computed from item
   sizes (1 unit per started KB per item written), because moto does not report real consumed
   capacity.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_dynamodb import DynamoDBStore
from bench.common import (
    Result,
    arguments,
    best_of,
    best_of_async,
    emit,
    environment_json,
    envs_label,
    free_port,
    relay_cipher,
    sizes,
)

ENCRYPTION_KEY = "bench-encryption-key-0123456789"
TABLE = "autoconfig-bench"
REGION = "us-east-1"
REPEATS = 5
#: Not 100,000 by default: see the module's docstring.
DEFAULT_SIZES = (1_000, 10_000)

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)


# ---------------------------------------------------------------------------------------------
# a private moto server
# ---------------------------------------------------------------------------------------------


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """Start ``moto_server`` on a free loopback port; return the process and the endpoint."""
    executable = Path(sys.executable).parent / "moto_server"
    if not executable.exists():
        sys.exit("moto_server is not installed in this virtualenv")
    port = free_port()
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            raw_client(endpoint).list_tables()
            return process, endpoint
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                sys.exit("moto_server did not start")
            time.sleep(0.1)


def raw_client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        config=boto3.session.Config(retries={"total_max_attempts": 1}),
    )


def create_table(endpoint: str, table: str) -> None:
    """Create ``table`` with the DynamoDB store's key schema (partition ``namespace``, sort
    ``key``), on demand billing."""
    raw_client(endpoint).create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "namespace", "AttributeType": "S"},
            {"AttributeName": "key", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "namespace", "KeyType": "HASH"},
            {"AttributeName": "key", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


# ---------------------------------------------------------------------------------------------
# floors
# ---------------------------------------------------------------------------------------------


def raw_query_pages(endpoint: str, namespace: str) -> list[dict[str, Any]]:
    """Every item of ``namespace``: raw botocore Query pages with consistent reads."""
    client = raw_client(endpoint)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": "#ns = :ns",
        "ExpressionAttributeNames": {"#ns": "namespace"},
        "ExpressionAttributeValues": {":ns": {"S": namespace}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def floor_get_all(endpoint: str, namespace: str) -> int:
    """Raw Query pages + AES-GCM decrypt + ``json.loads`` of every relay-format item."""
    aes = relay_cipher(ENCRYPTION_KEY)
    count = 0
    for item in raw_query_pages(endpoint, namespace):
        blob = item["item"]["B"]
        json.loads(aes.decrypt(blob[:12], blob[12:], None))
        count += 1
    return count


def relay_full_rewrite(endpoint: str, namespace: str, items: list[dict[str, Any]]) -> int:
    """The reference's put: every item rewritten with BatchWriteItem, 25 per request."""
    client = raw_client(endpoint)
    requests = 0
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {
            TABLE: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        }
        while pending:
            requests += 1
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return requests


# ---------------------------------------------------------------------------------------------
# the project
# ---------------------------------------------------------------------------------------------


def open_cache(endpoint: str, namespace: str, fmt: str, **options: str) -> AutoConfigCache:
    # moto takes well over the default 30 s to write 10,000 records one by one.
    options.setdefault("timeout", "900")
    return AutoConfigCache.open(
        f"dynamodb://{TABLE}?region={REGION}&endpoint={endpoint}",
        cache_key=namespace,
        encryption_key=ENCRYPTION_KEY,
        format=fmt,
        options=options,
        registry=REGISTRY,
    )


REGISTRY = PluginRegistry()


async def facade_get_all(endpoint: str, namespace: str, fmt: str) -> int:
    cache = open_cache(endpoint, namespace, fmt)
    try:
        result = await cache.get_all()
        return len(result.snapshot)
    finally:
        await cache.close()


async def store_get_all(endpoint: str, namespace: str) -> int:
    store = DynamoDBStore.from_spec(
        StoreSpec(
            f"dynamodb://{TABLE}?region={REGION}&endpoint={endpoint}", namespace, {"timeout": "900"}
        )
    )
    try:
        return len(await store.cache_get_all())
    finally:
        await store.cache_close()


class WriteCounter:
    """Counts the write requests, items and write units a store sends (wraps ``dispatch``)."""

    def __init__(self, store: DynamoDBStore) -> None:
        self.requests = 0
        self.items = 0
        self.units = 0
        original: Callable[[str, dict[str, Any]], dict[str, Any]] = store.connection.dispatch

        def dispatch(operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
            if operation in ("PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"):
                self.requests += 1
                if operation == "PutItem":
                    self.count(kwargs["Item"])
                elif operation == "DeleteItem":
                    self.count(None)
                elif operation == "BatchWriteItem":
                    for requests in kwargs["RequestItems"].values():
                        for request in requests:
                            self.count(request.get("PutRequest", {}).get("Item"))
            return original(operation, kwargs)

        store.connection.dispatch = dispatch  # type: ignore[method-assign,assignment]

    def count(self, item: dict[str, Any] | None) -> None:
        self.items += 1
        self.units += write_units(item) if item is not None else 1


def item_bytes(item: dict[str, Any]) -> int:
    size = 0
    for name, value in item.items():
        size += len(name)
        ((kind, raw),) = value.items()
        size += len(raw) if kind == "B" else len(str(raw).encode())
    return size


def write_units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(item_bytes(item) / 1024))


async def changed_put(
    endpoint: str, namespace: str, snapshot: Snapshot, write_mode: str
) -> tuple[WriteCounter, float]:
    """A put with one environment changed; returns the counter and the elapsed seconds."""
    cache = open_cache(endpoint, namespace, "relay", write_mode=write_mode)
    try:
        await cache.set_all(snapshot)
        assert isinstance(cache.store, DynamoDBStore)
        counter = WriteCounter(cache.store)
        first_id = next(iter(snapshot.environments))
        changed = dict(snapshot.environments)
        changed[first_id] = Environment.from_json(
            environment_json(first_id, version=changed[first_id].version + 1)
        )
        start = time.perf_counter()
        await cache.set_all(Snapshot(environments=changed))
        return counter, time.perf_counter() - start
    finally:
        await cache.close()


async def run(count: int) -> list[Result]:
    """Every figure at ``count`` environments, on a new moto server."""
    label = envs_label(count)
    process, endpoint = start_moto()
    try:
        create_table(endpoint, TABLE)
        snapshot = Snapshot(
            environments={
                f"env-{i:05}": Environment.from_json(environment_json(f"env-{i:05}"))
                for i in range(count)
            }
        )
        results: list[Result] = []

        # 1 + 2: reads. The relay namespace is what the floor decrypts.
        for fmt in ("relay", "v2"):
            cache = open_cache(endpoint, f"read-{fmt}", fmt, write_mode="batch")
            await cache.set_all(snapshot)
            await cache.close()
            loaded = await facade_get_all(endpoint, f"read-{fmt}", fmt)
            assert loaded == count, (fmt, loaded)
        # moto's speed drifts during a run, so the series are interleaved round by round and
        # each keeps its best time: every series sees the same server conditions.
        series: dict[str, list[float]] = {
            "floor": [],
            "raw": [],
            "relay": [],
            "v2": [],
            "store": [],
        }
        for _ in range(REPEATS if count <= 1_000 else 3):  # moto: ~10 s a series at 10,000
            series["floor"].append(best_of(1, lambda: floor_get_all(endpoint, "read-relay")))
            series["raw"].append(best_of(1, lambda: raw_query_pages(endpoint, "read-relay")))
            for fmt in ("relay", "v2"):
                series[fmt].append(
                    await best_of_async(
                        1, functools.partial(facade_get_all, endpoint, f"read-{fmt}", fmt)
                    )
                )
            series["store"].append(
                await best_of_async(1, lambda: store_get_all(endpoint, "read-relay"))
            )
        best = {name: min(times) for name, times in series.items()}
        for fmt in ("relay", "v2"):
            results.append(
                Result(
                    f"DynamoDB (moto) cold get_all, facade, {fmt}, {label}",
                    best[fmt],
                    "s",
                    best["floor"],
                    "raw Query pages + decrypt + json.loads",
                    "<= 1.2",
                    "best of each series; includes one DescribeTable (schema check) and model "
                    "parsing",
                    envs=count,
                    figure=f"DynamoDB (moto) cold get_all, {fmt}",
                )
            )
        results.append(
            Result(
                f"DynamoDB (moto) cold get_all, store only, {label}",
                best["store"],
                "s",
                best["raw"],
                "raw Query pages",
                "",
                "includes one DescribeTable",
                envs=count,
                figure="DynamoDB (moto) cold get_all, store only",
            )
        )

        # 3: writes for a put with one change, vs. the reference's full rewrite.
        reference_items = [
            {
                "namespace": {"S": "reference"},
                "key": {"S": f"env:{env_id}"},
                "item": {"B": os.urandom(len(json.dumps(env.to_json())) + 28 + 60)},
            }
            for env_id, env in snapshot.environments.items()
        ]
        reference_requests = relay_full_rewrite(endpoint, "reference", reference_items)
        reference_units = sum(write_units(item) for item in reference_items)
        for write_mode in ("conditional", "batch"):
            counter, elapsed = await changed_put(
                endpoint, f"write-{write_mode}", snapshot, write_mode
            )
            results.append(
                Result(
                    f"DynamoDB put, 1 of {count:,} changed, {write_mode}: write requests",
                    counter.requests,
                    "requests",
                    reference_requests,
                    "reference full rewrite",
                    "O(1)",
                    f"{counter.items} item(s) written; set_all took {elapsed * 1000:.0f} ms "
                    "(one keys-only Query pass + the write)",
                    envs=count,
                    figure=f"DynamoDB put, 1 changed, {write_mode}: write requests",
                )
            )
            results.append(
                Result(
                    f"DynamoDB put, 1 of {count:,} changed, {write_mode}: write units",
                    counter.units,
                    "WCU",
                    reference_units,
                    "reference full rewrite",
                    "O(1)",
                    envs=count,
                    figure=f"DynamoDB put, 1 changed, {write_mode}: write units",
                )
            )
        return results
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


async def main() -> None:
    args = arguments(__doc__ or "")
    results: list[Result] = []
    for count in sizes(args, DEFAULT_SIZES):
        start = time.monotonic()
        results += await run(count)
        print(
            f"bench_dynamodb: {envs_label(count)} in {time.monotonic() - start:.0f} s", flush=True
        )
    emit(results, args.json)


if __name__ == "__main__":
    asyncio.run(main())
