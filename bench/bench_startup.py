"""Benchmark: from process start to ``/readyz`` 200, serving a cache of N environments.

Run: ``.venv/bin/python -m bench.bench_startup [--quick] [--envs 1000,10000,100000]
[--stores sqlite,redis,dynamodb] [--json out.jsonl]``. At each size it starts its own ``redis-server`` and ``moto_server`` on
free loopback ports and an SQLite file in a temporary folder, and stops them after.

For each store (SQLite, Redis, DynamoDB on moto) the cache holds N environments of ~1 KB,
written through the library, once in the ``relay`` format and once in ``v2`` (two cache keys).
DynamoDB runs only up to 10,000 environments: moto, an emulator in Python, takes minutes to
write and read 100,000 items, and its times say little about AWS anyway.
The stream URI points at a port where nothing listens, so the instance can only become ready
from the cache, as during a LaunchDarkly outage. Goals: SQLite <= 1.5, Redis <= 1.3.

* **Measured**: wall time from ``Popen`` of ``autoconfig-cache run`` to the first ``/readyz``
  answering 200 (polled every 5 ms), for the ``relay`` and ``v2`` data.
* **Floor**: wall time from ``Popen`` to exit of a plain Python process that imports only the
  raw client (``sqlite3`` / ``redis`` / ``boto3``) and ``cryptography``, reads every blob of the
  ``relay`` data with one raw query (SELECT / HGETALL / paginated consistent Query), AES-GCM
  decrypts each (the key derived with HKDF-SHA256 as the ``relay`` format does) and
  ``json.loads`` it. That is the least any process must do to hold the same data: interpreter
  start, client import, the read, decryption and parsing. Both are measured in the same run,
  ``REPEATS`` rounds (``REPEATS_LARGE`` at 100,000) interleaved (floor, relay, v2); the tables
  give the medians and the median of the per-round ratios.

* **Phases** (informational rows ``start phases, ...``): the same start timed inside the
  process, in rounds of their own (:data:`PHASES_SCRIPT`): the imports (from the process's
  first line; beside the floor process's imports of the client and ``cryptography``), the
  configuration and the service's objects (the floor has neither), and from the service's
  start to ready (the status server binds while the cache is read, decrypted, decoded and
  applied; beside the floor's read + decrypt + ``json.loads``). They say where the ratio above
  comes from.

Not in the floor, and so in the ratio: importing the service (asyncio, h11, pluggy, every
installed store plugin; ``bench_imports`` measures these alone), configuration, the status
server, the ``v2`` format's per-item header, building models and the stream manager's
reconciliation. The stream client's aiohttp is not: the stream connects once the cache read has
ended, and imports aiohttp then.

The project's modules are compiled to bytecode before any process is timed
(:func:`bench.common.compile_project`), as an installed package's are: the measured ``run``
must not compile its own source on every start when the floor's libraries load precompiled.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.models import Environment, Snapshot
from bench.common import (
    Result,
    add_common_arguments,
    compile_project,
    emit,
    environment_json,
    envs_label,
    free_port,
    paired,
    runs_text,
    sizes,
)

ENCRYPTION_KEY = "bench-encryption-key-0123456789"
AUTOCONFIG_KEY = "rel-bench-startup-0000"
#: Rounds per size: a start takes well under a second up to 10,000 environments, where the
#: machine's noise matters most (single runs differ by up to a third); 100,000 takes seconds.
REPEATS = 7
REPEATS_LARGE = 3
FORMATS = ("relay", "v2")
#: moto is too slow beyond this (see the module's docstring).
DYNAMODB_MAX_ENVS = 10_000
#: Seconds: the store option ``timeout`` of the seeding and of the service. The default (5 s)
#: would fail a run at 100,000 environments on a busy machine rather than measure it.
STORE_TIMEOUT = 300
#: The stores measured (``--stores``), in order.
STORES = ("sqlite", "redis", "dynamodb")
#: The issue's goals, by store.
TARGETS = {"sqlite": "<= 1.5", "redis": "<= 1.3"}

# The floor process. argv: store kind, target (path / port / endpoint), cache key, key.
FLOOR_SCRIPT = r"""
import time
imports_started = time.perf_counter()
import json, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
kind, target, cache_key, key = sys.argv[1:5]
if kind == "sqlite":
    import sqlite3
elif kind == "redis":
    import redis
else:
    import boto3
started = time.perf_counter()
if kind == "sqlite":
    with sqlite3.connect(target) as conn:
        blobs = [row[0] for row in conn.execute(
            "SELECT blob FROM autoconfig_cache WHERE cache_key = ?", (cache_key,))]
elif kind == "redis":
    blobs = list(redis.Redis(port=int(target)).hgetall(cache_key).values())
else:
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=target)
    args = {"TableName": "autoconfig-startup", "KeyConditionExpression": "#n = :n",
            "ExpressionAttributeNames": {"#n": "namespace"},
            "ExpressionAttributeValues": {":n": {"S": cache_key}}, "ConsistentRead": True}
    blobs = []
    while True:
        page = client.query(**args)
        blobs.extend(item["item"]["B"] for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
aes = AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                  info=b"ld-relay autoconfig cache").derive(key.encode()))
items = [json.loads(aes.decrypt(b[:12], b[12:], None)) for b in blobs]
assert items
print(len(items), time.perf_counter() - started, started - imports_started)
"""

# The service's start in phases, timed inside the process: ``run`` as the console script runs
# it, with ``serve`` replaced by a start of the same Service that waits for the first complete
# configuration (from the cache: the stream is unreachable), prints the phases' times as JSON
# and exits. The phases add up to the start less the interpreter's own start and the last HTTP
# answer, which only the wall time above includes.
PHASES_SCRIPT = r"""
import time
imports_started = time.perf_counter()
import json, sys
import autoconfig_cache.service.runner as runner
from autoconfig_cache.cli.main import main
imported = time.perf_counter()
phases = {"imports": imported - imports_started}

async def serve_until_ready(config):
    configured = time.perf_counter()
    service = runner.Service(config)
    built = time.perf_counter()
    await service.start()
    await service.manager.wait_ready()
    ready = time.perf_counter()
    phases.update(configuration=configured - imported, service=built - configured,
                  to_ready=ready - built)
    await service.close()
    print(json.dumps(phases))
    return 0

runner.serve = serve_until_ready
sys.exit(main(["run"]))
"""


@contextmanager
def redis_server(directory: Path) -> Iterator[int]:
    from bench.bench_redis import start_redis_for_bench

    process, port = start_redis_for_bench(directory)
    try:
        yield port
    finally:
        process.kill()
        process.wait()


@contextmanager
def moto_server() -> Iterator[str]:
    from bench.bench_dynamodb import start_moto

    process, endpoint = start_moto()
    try:
        yield endpoint
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def seed(store_url: str, count: int) -> None:
    """Write ``count`` environments under one cache key per format."""
    snapshot = Snapshot(
        environments={
            f"env-{i:05}": Environment.from_json(environment_json(f"env-{i:05}"))
            for i in range(count)
        }
    )

    async def write() -> None:
        for fmt in FORMATS:
            async with AutoConfigCache.open(
                store_url, cache_key=f"startup-{fmt}", encryption_key=ENCRYPTION_KEY, format=fmt
            ) as cache:
                await cache.create_storage()
                await cache.set_all(snapshot)
                loaded = await cache.get_all()
                assert loaded.report.loaded == count, loaded.report

    asyncio.run(write())


def time_floor(kind: str, target: str) -> tuple[float, float, float]:
    """(process wall time, in-process read+decrypt+parse time, in-process import time) of the
    floor process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", FLOOR_SCRIPT, kind, target, "startup-relay", ENCRYPTION_KEY],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    _, read, imports = done.stdout.split()
    return wall, float(read), float(imports)


def service_environ(store_env: dict[str, str], fmt: str, port: int) -> dict[str, str]:
    """The environment of ``run`` serving the ``fmt`` data on ``port``, the stream unreachable."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTO_CONFIG")},
        **store_env,
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "AUTO_CONFIG_CACHE_KEY": f"startup-{fmt}",
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "AUTO_CONFIG_CACHE_FORMAT": fmt,
        "AUTO_CONFIG_CACHE_LOG_LEVEL": "WARNING",
        "AUTO_CONFIG_CACHE_BIND_ADDRESS": "127.0.0.1",
        "PORT": str(port),
    }


def time_phases(store_env: dict[str, str], fmt: str) -> dict[str, float]:
    """Seconds of each phase of a start, measured inside the process (:data:`PHASES_SCRIPT`)."""
    done = subprocess.run(
        [sys.executable, "-c", PHASES_SCRIPT],
        env=service_environ(store_env, fmt, free_port()),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the phases probe failed ({fmt}): {done.stderr[-2000:]}")
    phases: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return phases


def ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def time_service(store_env: dict[str, str], fmt: str) -> float:
    """Seconds from Popen of ``run`` to ``/readyz`` 200 (the stream is unreachable)."""
    port = free_port()
    env = service_environ(store_env, fmt, port)
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "autoconfig_cache.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = start + 120
        while not ready(port):
            if process.poll() is not None or time.perf_counter() > deadline:
                if process.poll() is None:  # too slow: stop it, or reading its stderr hangs
                    process.kill()
                    process.wait()
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"run did not become ready ({fmt}): {stderr[-2000:]}")
            time.sleep(0.005)
        return time.perf_counter() - start
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(
    name: str, kind: str, target: str, store_env: dict[str, str], count: int
) -> list[Result]:
    """Interleaved rounds of floor / relay / v2; medians and the median of per-round ratios."""
    floors: list[float] = []
    inner: list[float] = []
    floor_imports: list[float] = []
    series: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    phases: dict[str, list[dict[str, float]]] = {fmt: [] for fmt in FORMATS}
    for _ in range(REPEATS if count <= 10_000 else REPEATS_LARGE):
        wall, read, imports = time_floor(kind, target)
        floors.append(wall)
        inner.append(read)
        floor_imports.append(imports)
        for fmt in FORMATS:
            series[fmt].append(time_service(store_env, fmt))
            phases[fmt].append(time_phases(store_env, fmt))
    results = []
    for fmt, rounds in phases.items():
        results += phase_results(name, fmt, count, rounds, floor_imports, inner)
    for fmt, times in series.items():
        measured, floor, ratio = paired(times, floors)
        results.append(
            Result(
                f"start to /readyz 200, {name}, {fmt}, {envs_label(count)}",
                measured,
                "s",
                floor,
                "process: raw read + decrypt + json.loads",
                TARGETS.get(kind, "-"),
                f"floor's in-process read+decrypt+parse {min(inner):.3f} s (the rest of the "
                f"floor is interpreter start and imports); {runs_text(times, 1, 's')}; "
                f"floor {runs_text(floors, 1, 's')}",
                envs=count,
                figure=f"start to /readyz 200, {name}, {fmt}",
                paired_ratio=ratio,
            )
        )
    return results


def phase_results(
    name: str,
    fmt: str,
    count: int,
    rounds: list[dict[str, float]],
    floor_imports: list[float],
    floor_reads: list[float],
) -> list[Result]:
    """Where the service's start goes, beside the floor's two phases (informational rows)."""
    label = f"start phases, {name}, {fmt}"

    def row(
        phase: str, times: list[float], floors: list[float] | None, floor_name: str, notes: str
    ) -> Result:
        if floors is None:
            measured, floor, ratio = statistics.median(times), None, None
        else:
            measured, floor, ratio = paired(times, floors)
        return Result(
            f"{label}: {phase}, {envs_label(count)}",
            measured,
            "s",
            floor,
            floor_name,
            "-",
            f"{notes}; {runs_text(times, 1, 's')}",
            envs=count,
            figure=f"{label}: {phase}",
            paired_ratio=ratio,
        )

    return [
        row(
            "imports",
            [r["imports"] for r in rounds],
            floor_imports,
            "floor process: client + cryptography",
            "in the process, from its first line: the command line and the service (asyncio, "
            "h11, pluggy, attrs, msgspec, cryptography, every installed plugin's entry point)",
        ),
        row(
            "configuration and service built",
            [r["configuration"] + r["service"] for r in rounds],
            None,
            "",
            "arguments, settings, plugin discovery, logging; then the store, codec, stream "
            "client and status server objects (the floor has neither)",
        ),
        row(
            "cache read to ready",
            [r["to_ready"] for r in rounds],
            floor_reads,
            "floor process: read + decrypt + json.loads",
            "the status server binds while the store is read; then decrypt, decode, build the "
            "models and apply them (ready)",
        ),
    ]


def run(count: int, stores: frozenset[str] = frozenset(STORES)) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if "sqlite" in stores:
            results += run_sqlite(directory, count)
        if "redis" in stores:
            results += run_redis(directory, count)
        if "dynamodb" in stores:
            results += run_dynamodb(count)
    return results


def run_sqlite(directory: Path, count: int) -> list[Result]:
    sqlite_path = directory / "startup.db"
    sqlite_url = f"sqlite://{sqlite_path}?timeout={STORE_TIMEOUT}"
    seed(sqlite_url, count)
    return measure(
        "sqlite", "sqlite", str(sqlite_path), {"AUTO_CONFIG_CACHE_STORE": sqlite_url}, count
    )


def run_redis(directory: Path, count: int) -> list[Result]:
    with redis_server(directory) as port:
        url = f"redis://127.0.0.1:{port}?timeout={STORE_TIMEOUT}"
        seed(url, count)
        return measure("redis", "redis", str(port), {"AUTO_CONFIG_CACHE_STORE": url}, count)


def run_dynamodb(count: int) -> list[Result]:
    if count > DYNAMODB_MAX_ENVS:
        print(f"bench_startup: DynamoDB (moto) skipped at {envs_label(count)}", flush=True)
        return []
    with moto_server() as endpoint:
        url = (
            "dynamodb://autoconfig-startup?region=us-east-1"
            f"&endpoint={endpoint}&timeout={STORE_TIMEOUT}"
        )
        seed(url + "&create_table=true&write_mode=batch", count)
        return measure(
            "dynamodb (moto)", "dynamodb", endpoint, {"AUTO_CONFIG_CACHE_STORE": url}, count
        )


def parse_stores(text: str) -> frozenset[str]:
    """``"sqlite,redis"`` -> the stores to run (each one of :data:`STORES`)."""
    stores = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = stores - set(STORES)
    if not stores or unknown:
        raise argparse.ArgumentTypeError(f"stores are among {', '.join(STORES)}: {text!r}")
    return stores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    add_common_arguments(parser)
    parser.add_argument(
        "--stores",
        type=parse_stores,
        default=frozenset(STORES),
        help=f"stores to run, comma-separated (default: {','.join(STORES)})",
    )
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    compile_project()
    results: list[Result] = []
    for count in sizes(args):
        start = time.monotonic()
        results += run(count, args.stores)
        print(f"bench_startup: {envs_label(count)} in {time.monotonic() - start:.0f} s", flush=True)
    emit(results, args.json)


if __name__ == "__main__":
    main()
