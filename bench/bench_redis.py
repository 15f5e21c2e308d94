"""Benchmark of the Redis store against floors measured in the same run.

Run manually: ``.venv/bin/python -m bench.bench_redis [--quick] [--envs 1000,10000,100000]
[--json out.jsonl]``. It starts its own ``redis-server`` on a free loopback port (emptied between
sizes) and kills it at the end. Environments of ~1 KB; at each size:

1. cold ``get_all`` through the cache facade (``relay`` and ``v2`` formats: a new connection,
   fetch, decrypt, parse into models) vs. the floor: raw ``HGETALL`` of the same ``relay`` blobs
   + AES-GCM decrypt + ``json.loads``, also on a new connection. Goal <= 1.05.
2. the same (``relay``) vs. the LaunchDarkly Python SDK's Redis feature store reading as many
   plaintext items of the same size (``ldclient.integrations.Redis``, caching off, so it reads
   Redis). Goal <= 0.8.
3. store-level ``cache_get_all`` vs. raw ``HGETALL`` + ``HGETALL`` of the versions hash.
4. a ``put`` in which 1 of N environments changed, through the facade (an open cache, as in a
   running service; ``relay`` and ``v2``), vs. the Relay Proxy's full rewrite as it really runs:
   serialize every item (``json.dumps``), encrypt it (AES-GCM with ``cryptography``, a fresh
   nonce, as the codec), then ``MULTI; DEL; HSET`` all; ``EXEC``. Goal <= 0.25. Its bytes sent
   and commands issued are reported against the rewrite's too, and the store's own
   ``cache_set_all`` of records already encrypted against the rewrite's write alone.
5. a ``put`` identical to the stored state: encryptions (counted by a ``cache_encrypt``
   hookimpl that counts and returns ``None``) and store writes (Redis' own count of changes to
   the dataset, ``rdb_changes_since_last_save`` of ``INFO persistence``), for the cache that
   wrote the state and for a new one that loaded it first (a restart). Goal 0 and 0.

Timed figures are interleaved rounds (floor, then the project), reported as the medians and
the median of the per-round ratios.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from autoconfig_cache import hookimpl
from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec.formats import EncryptionContext
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_redis import RedisStore
from bench.common import (
    Result,
    arguments,
    best_of_async,
    emit,
    environment_json,
    envs_label,
    free_port,
    paired,
    relay_cipher,
    runs_text,
    sizes,
)

ENCRYPTION_KEY = "bench-encryption-key-0123456789"
FORMATS = ("relay", "v2")
#: Seconds: the store option ``timeout`` of every cache and store the benchmark opens.
STORE_TIMEOUT = 300


def repeats(count: int) -> int:
    """Rounds per timed figure: fewer at 100,000, where one round takes seconds."""
    return 7 if count <= 10_000 else 3


# ---------------------------------------------------------------------------------------------
# a private redis-server
# ---------------------------------------------------------------------------------------------


def start_redis_for_bench(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``redis-server`` on a free loopback port; return the process and the port."""
    executable = shutil.which("redis-server")
    if executable is None:
        sys.exit("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis(port=port, socket_connect_timeout=0.5).ping():
                return process, port
        except redis.RedisError:
            if time.monotonic() > deadline:
                process.kill()
                sys.exit("redis-server did not start")
            time.sleep(0.05)


class RedisCounters:
    """Bytes received and commands processed by the server, from INFO, on one connection.

    ``commandstats`` counts every command, including those a Lua script calls; the commands
    a client sent are those minus the calls made inside scripts, which is why both the
    per-command deltas and the network bytes are reported.
    """

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(port=port)

    def snapshot(self) -> tuple[int, dict[str, int]]:
        stats = self.client.info("stats")
        commandstats = self.client.info("commandstats")
        calls = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in commandstats.items()
        }
        return int(stats["total_net_input_bytes"]), calls

    def delta(self, before: tuple[int, dict[str, int]]) -> tuple[int, dict[str, int]]:
        """Bytes and calls per command since ``before``, without this class's own INFO calls."""
        after = self.snapshot()
        calls = {
            name: count - before[1].get(name, 0)
            for name, count in after[1].items()
            if name != "info" and count != before[1].get(name, 0)
        }
        info_bytes = len(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n") + len(
            b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n"
        )
        return after[0] - before[0] - info_bytes, calls


# ---------------------------------------------------------------------------------------------
# the floors
# ---------------------------------------------------------------------------------------------


async def floor_get_all(port: int, key: str, aes: AESGCM) -> int:
    """Raw HGETALL + AES-GCM decrypt + json.loads, on a new connection."""
    client = aioredis.Redis(port=port)
    try:
        raw: dict[bytes, bytes] = await client.hgetall(key)  # type: ignore[assignment]
    finally:
        await client.aclose()
    items = [json.loads(aes.decrypt(blob[:12], blob[12:], None)) for blob in raw.values()]
    return len(items)


async def raw_hgetall_pair(port: int, key: str, versions_key: str) -> int:
    """Raw HGETALL of the data hash and the versions hash in one transaction (store floor)."""
    client = aioredis.Redis(port=port)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.hgetall(versions_key)
            data, _versions = await pipe.execute()
    finally:
        await client.aclose()
    return len(data)


def relay_full_rewrite(client: redis.Redis, key: str, blobs: dict[bytes, bytes]) -> None:
    """What the Relay Proxy does on a put: DEL + HSET of every field, in one transaction."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping=blobs)
    pipe.execute()


def relay_full_put(
    client: redis.Redis, key: str, items: dict[str, dict[str, Any]], aes: AESGCM
) -> None:
    """The Relay Proxy's put as it really runs: serialize and encrypt every item, then the
    full rewrite. The floor of a put through the facade, encryption included."""
    blobs = {}
    for field, item in items.items():
        nonce = os.urandom(12)
        blobs[field.encode()] = nonce + aes.encrypt(nonce, json.dumps(item).encode(), None)
    relay_full_rewrite(client, key, blobs)


class EncryptionCounter:
    """A ``cache_encrypt`` hookimpl that counts the items encrypted and lets the built-in
    codec encrypt them (it returns ``None``)."""

    def __init__(self) -> None:
        self.count = 0

    @hookimpl
    def cache_encrypt(self, plaintext: bytes, context: EncryptionContext) -> bytes | None:
        self.count += 1
        return None


def dataset_changes(client: redis.Redis) -> int:
    """Redis' count of changes to the dataset since the last save (saving is off)."""
    return int(client.info("persistence")["rdb_changes_since_last_save"])


# ---------------------------------------------------------------------------------------------
# the LaunchDarkly SDK's Redis feature store
# ---------------------------------------------------------------------------------------------


def ld_sdk_store(port: int, prefix: str) -> Any:
    from ldclient.feature_store import CacheConfig
    from ldclient.integrations import Redis as LDRedis

    return LDRedis.new_feature_store(
        url=f"redis://127.0.0.1:{port}", prefix=prefix, caching=CacheConfig.disabled()
    )


def ld_sdk_populate(port: int, prefix: str, count: int, size: int) -> None:
    from ldclient.versioned_data_kind import FEATURES

    flags: dict[str, Any] = {}
    for index in range(count):
        key = f"flag-{index}"
        flag: dict[str, Any] = {"key": key, "version": 1, "on": True, "description": ""}
        flag["description"] = "x" * max(0, size - len(json.dumps(flag)))
        flags[key] = flag
    store = ld_sdk_store(port, prefix)
    store.init({FEATURES: flags})
    store.close()


def ld_sdk_cold_all(port: int, prefix: str) -> int:
    from ldclient.versioned_data_kind import FEATURES

    store = ld_sdk_store(port, prefix)  # a new store: a new connection pool, as at start-up
    try:
        result: dict[str, Any] = {}
        store.all(FEATURES, lambda items: result.update(items=items))
        return len(result["items"])
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------


async def run(port: int, count: int) -> list[Result]:
    """Every figure at ``count`` environments, on an empty server."""
    # A long deadline: 100,000 items take seconds to write on a busy machine; the store's
    # default timeout (5 s) would fail the run, not measure it.
    url = f"redis://127.0.0.1:{port}?timeout={STORE_TIMEOUT}"
    label = envs_label(count)
    rounds = repeats(count)
    sync_client = redis.Redis(port=port)
    sync_client.flushall()
    results: list[Result] = []
    environments = {f"env-{i}": environment_json(f"env-{i}", 1024) for i in range(count)}
    snapshot, problems = Snapshot.from_put_data({"environments": environments, "filters": {}})
    assert not problems
    aes = relay_cipher(ENCRYPTION_KEY)

    def open_cache(key: str, fmt: str, registry: PluginRegistry | None = None) -> AutoConfigCache:
        return AutoConfigCache.open(
            url, cache_key=key, encryption_key=ENCRYPTION_KEY, format=fmt, registry=registry
        )

    for fmt in FORMATS:
        async with open_cache(f"bench-{fmt}", fmt) as cache:
            await cache.set_all(snapshot)

    async def cold_facade(fmt: str) -> None:
        async with open_cache(f"bench-{fmt}", fmt) as cache:
            loaded = await cache.get_all()
        assert len(loaded.snapshot.environments) == count, loaded.report

    # 1, 2: interleaved rounds: a machine busy with other work disturbs the floor and the
    # candidates alike instead of whichever happened to run during the disturbance.
    ld_sdk_populate(port, "bench-ld", count, 1024)
    series: dict[str, list[float]] = {"floor": [], "relay": [], "v2": [], "ld": []}
    for _ in range(rounds):
        series["floor"].append(
            await best_of_async(1, lambda: floor_get_all(port, "bench-relay", aes))
        )
        for fmt in FORMATS:
            series[fmt].append(await best_of_async(1, lambda fmt=fmt: cold_facade(fmt)))
        start = time.perf_counter()
        assert ld_sdk_cold_all(port, "bench-ld") == count
        series["ld"].append(time.perf_counter() - start)
    for fmt in FORMATS:
        measured, floor, ratio = paired(series[fmt], series["floor"])
        results.append(
            Result(
                f"cold get_all, {fmt}, {label}",
                measured * 1000,
                "ms",
                floor * 1000,
                "raw HGETALL + AES-GCM + json.loads",
                "<= 1.05",
                notes=f"facade: new connection, fetch, decrypt, envelope, model objects; "
                f"{runs_text(series[fmt])}; floor {runs_text(series['floor'])}",
                envs=count,
                figure=f"Redis cold get_all, {fmt}",
                paired_ratio=ratio,
            )
        )
    measured, floor, ratio = paired(series["relay"], series["ld"])
    results.append(
        Result(
            f"cold get_all (relay) vs LD SDK Redis store, {label}",
            measured * 1000,
            "ms",
            floor * 1000,
            "ldclient.integrations.Redis all() (plaintext)",
            "<= 0.8",
            notes=f"LD SDK {runs_text(series['ld'])}",
            envs=count,
            figure="Redis cold get_all, relay, vs LD SDK",
            paired_ratio=ratio,
        )
    )
    sync_client.delete("bench-ld:features")

    # 3: store level: cache_get_all vs the raw pair of HGETALLs it issues.
    versions = "{bench-relay}:versions"

    async def store_get_all() -> None:
        store = RedisStore.from_spec(StoreSpec(url, "bench-relay"))
        try:
            assert len(await store.cache_get_all()) == count
        finally:
            await store.cache_close()

    raw_pair_runs, store_runs = [], []
    for _ in range(rounds):
        raw_pair_runs.append(
            await best_of_async(1, lambda: raw_hgetall_pair(port, "bench-relay", versions))
        )
        store_runs.append(await best_of_async(1, store_get_all))
    measured, floor, ratio = paired(store_runs, raw_pair_runs)
    results.append(
        Result(
            f"store cache_get_all, {label}",
            measured * 1000,
            "ms",
            floor * 1000,
            "raw MULTI HGETALL x2 EXEC",
            "-",
            envs=count,
            figure="Redis store cache_get_all",
            paired_ratio=ratio,
        )
    )

    # 4: a put with 1 of N changed, through an open facade, vs the Relay Proxy's full put.
    # Each round changes env-0 again (a new version), so that every round has one change.
    plain = {f"env:{env_id}": env for env_id, env in environments.items()}
    counters = RedisCounters(port)

    def changed(version: int) -> Snapshot:
        env = dict(environments["env-0"], version=version, envName=f"changed {version}")
        return Snapshot(environments={**snapshot.environments, "env-0": Environment.from_json(env)})

    put_runs: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    put_counts: dict[str, tuple[int, dict[str, int]]] = {}
    floor_runs: list[float] = []
    records: list[StoredRecord] = []
    floor_counts: tuple[int, dict[str, int]] = (0, {})
    for fmt in FORMATS:
        async with open_cache(f"bench-{fmt}", fmt) as cache:
            # A first put (warm-up: the connection, the script) as in a running process.
            await cache.set_all(changed(2))
            puts = [changed(3 + i) for i in range(rounds)]
            for i in range(rounds):
                if fmt == FORMATS[0]:
                    before = counters.snapshot()
                    start = time.perf_counter()
                    relay_full_put(sync_client, "bench-relay-full", plain, aes)
                    floor_runs.append(time.perf_counter() - start)
                    floor_counts = counters.delta(before)
                before = counters.snapshot()
                start = time.perf_counter()
                await cache.set_all(puts[i])
                put_runs[fmt].append(time.perf_counter() - start)
                put_counts[fmt] = counters.delta(before)
            if fmt == "relay":
                records = list(await cache.get_records())
    for fmt in FORMATS:
        measured, floor, ratio = paired(put_runs[fmt], floor_runs)
        results.append(
            Result(
                f"put, 1 of {count:,} changed, {fmt}: time",
                measured * 1000,
                "ms",
                floor * 1000,
                "Relay Proxy full put: json.dumps + AES-GCM every item, MULTI DEL HSET EXEC",
                "<= 0.25",
                notes=f"an open cache (warm connection); {runs_text(put_runs[fmt])}; "
                f"floor {runs_text(floor_runs)}",
                envs=count,
                figure=f"Redis put, 1 changed, {fmt}",
                paired_ratio=ratio,
            )
        )
    put_bytes, put_calls = put_counts["relay"]
    full_bytes, full_calls = floor_counts
    in_lua = ("hset", "hdel", "hexists", "hget", "hlen")
    put_sent = {k: v for k, v in put_calls.items() if k not in in_lua}
    put_lua = {k: v for k, v in put_calls.items() if k in in_lua}
    full_sent = {k: v for k, v in full_calls.items() if k not in ("client|setinfo", "hello")}
    results.append(
        Result(
            f"put, 1 of {count:,} changed, relay: bytes sent",
            put_bytes,
            "B",
            full_bytes,
            "Relay Proxy full rewrite (DEL + HSET all)",
            "O(1) in unchanged items",
            envs=count,
            figure="Redis put, 1 changed, relay: bytes sent",
        )
    )
    results.append(
        Result(
            f"put, 1 of {count:,} changed, relay: commands sent",
            sum(put_sent.values()),
            "cmd",
            sum(full_sent.values()),
            "MULTI, DEL, HSET, EXEC",
            "-",
            notes=f"sent {put_sent} (+ inside the Lua script {put_lua}) vs {full_sent}",
            envs=count,
            figure="Redis put, 1 changed, relay: commands sent",
        )
    )
    # The same put at the store level (records already encrypted): the store's own cost, vs
    # the rewrite's write alone (blobs ready).
    blobs = {r.field.encode(): r.blob for r in records}
    store = RedisStore.from_spec(StoreSpec(url, "bench-relay"))
    await store.cache_set_all(records, False)  # connect, load the script
    store_runs, write_runs = [], []
    for i in range(rounds):
        start = time.perf_counter()
        relay_full_rewrite(sync_client, "bench-relay-full", blobs)
        write_runs.append(time.perf_counter() - start)
        bumped = [
            StoredRecord(r.field, r.version + 1 + i, r.blob) if j == 2 else r
            for j, r in enumerate(records)
        ]
        start = time.perf_counter()
        await store.cache_set_all(bumped, False)
        store_runs.append(time.perf_counter() - start)
    await store.cache_close()
    measured, floor, ratio = paired(store_runs, write_runs)
    results.append(
        Result(
            f"store cache_set_all, 1 of {count:,} changed",
            measured * 1000,
            "ms",
            floor * 1000,
            "MULTI DEL HSET EXEC, blobs ready",
            "-",
            notes="records already encrypted: the store's own cost of a put with one change",
            envs=count,
            figure="Redis store cache_set_all, 1 changed",
            paired_ratio=ratio,
        )
    )
    sync_client.delete("bench-relay-full")

    # 5: a put identical to the stored state, through the cache that wrote it and through a
    # new cache that loaded it first (a restart). Encryptions counted by a hookimpl.
    again = Snapshot(environments={k: Environment.from_json(v) for k, v in environments.items()})
    for fmt in FORMATS:
        counter = EncryptionCounter()
        registry = PluginRegistry()
        registry.register(counter, name="bench-encryption-counter")
        cache = open_cache(f"bench-same-{fmt}", fmt, registry)
        figures = []
        try:
            await cache.set_all(snapshot)
            for case, reload in (("the cache that wrote it", False), ("a new cache", True)):
                if reload:
                    await cache.close()
                    cache = open_cache(f"bench-same-{fmt}", fmt, registry)
                    assert len((await cache.get_all()).snapshot.environments) == count
                counter.count = 0
                changes = dataset_changes(sync_client)
                before = counters.snapshot()
                start = time.perf_counter()
                await cache.set_all(again)
                elapsed = time.perf_counter() - start
                sent, calls = counters.delta(before)
                writes = dataset_changes(sync_client) - changes
                figures.append((case, counter.count, writes, elapsed, sent, calls))
        finally:
            await cache.close()
        for case, encryptions, writes, elapsed, sent, calls in figures:
            what = f"put identical to the stored state, {fmt}, {case}"
            results.append(
                Result(
                    f"{what}: encryptions, {label}",
                    encryptions,
                    "items",
                    target="0",
                    notes=f"set_all took {elapsed * 1000:.1f} ms",
                    envs=count,
                    figure=f"{what}: encryptions",
                )
            )
            results.append(
                Result(
                    f"{what}: store writes, {label}",
                    writes,
                    "changes",
                    target="0",
                    notes=f"Redis dataset changes; {sent} B sent, commands {calls}",
                    envs=count,
                    figure=f"{what}: store writes",
                )
            )
    counters.client.close()
    sync_client.close()
    return results


async def run_sizes(counts: list[int]) -> list[Result]:
    directory = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    process, port = start_redis_for_bench(directory)
    results: list[Result] = []
    try:
        for count in counts:
            start = time.monotonic()
            results += await run(port, count)
            print(
                f"bench_redis: {envs_label(count)} in {time.monotonic() - start:.0f} s", flush=True
            )
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)
    return results


def main() -> None:
    args = arguments(__doc__ or "")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    emit(asyncio.run(run_sizes(sizes(args))), args.json)


if __name__ == "__main__":
    main()
