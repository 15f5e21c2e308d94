"""``autoconfig-cache run`` imports only what its start path needs (issue 14, "Start faster").

A fresh interpreter runs the command line's ``run`` with an SQLite store until the service has
started (status server bound, stream manager running against a port where nothing listens),
closes it, and reports which modules were imported. Nothing is timed: the test protects the
deferred imports (``bench/bench_imports.py`` measures what they save).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import clean_environ
from tests.import_watch import WATCH_AIOHTTP
from tests.services import free_port

# Runs `autoconfig-cache run` as the console script does, with `serve` replaced by a start of the
# Service, a wait for its stream client's first attempt (which fails: nothing listens there) and
# a close, then prints the imported modules as JSON, how many default TLS contexts (each loads
# the system's CA bundle) were built once the imports were done, and on which thread aiohttp was
# imported (True: the main thread, which runs the event loop).
PROBE = (
    WATCH_AIOHTTP
    + """
import asyncio, ssl

import autoconfig_cache.service.runner as runner
from autoconfig_cache.cli.main import main

tls_contexts = 0
default_context = ssl.create_default_context

def counting_default_context(*args, **kwargs):
    global tls_contexts
    # Not those of aiohttp's own import (aiohttp/connector.py, _make_ssl_context): the client
    # imports it at its first connection, whatever the scheme.
    if not sys._getframe(1).f_globals.get("__name__", "").startswith("aiohttp."):
        tls_contexts += 1
    return default_context(*args, **kwargs)

ssl.create_default_context = counting_default_context

async def start_then_close(config):
    service = runner.Service(config)
    await service.start()
    client = service.manager.client
    for _ in range(2000):
        if client.state.last_error is not None:
            break
        await asyncio.sleep(0.005)
    await service.close()
    report = {
        "started": True,
        "stream_attempted": client.state.last_error is not None,
        "modules": sorted(sys.modules),
        "tls_contexts": tls_contexts,
        "aiohttp_imports": aiohttp_imports,
    }
    print(json.dumps(report))
    return 0

runner.serve = start_then_close
sys.exit(main(["run", "--log-level", "error"]))
"""
)

#: Packages the SQLite start path has no use for: rich prints the tools' tables, orjson only
#: serialises (a start from the cache writes nothing), the others are the clients of stores that
#: are not configured.
UNNEEDED = ("rich", "orjson", "redis", "pynamodb", "botocore", "boto3")

#: The sinks' machinery, which a service with no sink configured never needs: the dispatcher,
#: the exec hook and its payload, the output file, the change tracker and the store ledger.
SINK_MACHINERY = (
    "autoconfig_cache.sinks.dispatcher",
    "autoconfig_cache.sinks.exec",
    "autoconfig_cache.sinks.hook_payload",
    "autoconfig_cache.sinks.output_file",
    "autoconfig_cache.sinks.tracker",
    "autoconfig_cache.sinks.store_ledger",
    "autoconfig_cache.sinks.claims",
    "autoconfig_cache.sinks.spec",
)

#: The installed store plugins' modules beyond their entry point: the option schemas and stores.
OTHER_STORES_CODE = (
    "autoconfig_cache_redis.settings",
    "autoconfig_cache_redis.store",
    "autoconfig_cache_dynamodb.settings",
    "autoconfig_cache_dynamodb.store",
)


#: What only the ``cache`` tools use: their handlers, the result tables and the maintenance API.
CACHE_TOOLS_CODE = (
    "autoconfig_cache.cli.cache_tools",
    "autoconfig_cache.cli.tables",
    "autoconfig_cache.maintenance",
)


def start_path_report(tmp_path: Path) -> dict[str, Any]:
    """What ``run`` with an SQLite store and an ``http://`` stream did up to a started service
    whose stream client has made its first attempt: ``modules`` imported, ``tls_contexts``
    built, ``aiohttp_imports`` (one entry per import, ``True`` if on the main thread)."""
    environ = clean_environ(
        {
            "AUTO_CONFIG_KEY": "rel-start-imports-0000",
            "AUTO_CONFIG_CACHE_STORE": f"sqlite:///{tmp_path / 'cache.db'}",
            "AUTO_CONFIG_CACHE_KEY": "start-imports",
            "STREAM_URI": f"http://127.0.0.1:{free_port()}",
            "PORT": str(free_port()),
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["started"]
    return report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One probe serves every test below: each asserts something else of the same start."""
    return start_path_report(tmp_path_factory.mktemp("start-imports"))


@pytest.fixture(scope="module")
def modules(report: dict[str, Any]) -> set[str]:
    return set(report["modules"])


def test_run_with_sqlite_imports_neither_rich_nor_other_store_clients(modules: set[str]) -> None:
    # The probe did walk the start path: the SQLite store and the status server are loaded.
    assert "autoconfig_cache.stores.sqlite" in modules
    assert "autoconfig_cache.service.status" in modules
    loaded = sorted(name for name in modules if name.split(".")[0] in UNNEEDED)
    assert loaded == []


def test_run_does_not_import_the_local_stream_server(modules: set[str]) -> None:
    assert "autoconfig_cache.stream.manager" in modules
    assert "autoconfig_cache.stream.server" not in modules
    assert "autoconfig_cache.demo" not in modules


def test_run_without_sinks_does_not_import_the_sinks_machinery(modules: set[str]) -> None:
    # The built-in sink types are registered (plugin discovery ran) but never built.
    assert "autoconfig_cache.sinks.builtin" in modules
    loaded = sorted(name for name in modules if name in SINK_MACHINERY)
    assert loaded == []


def test_run_with_sqlite_loads_only_the_entry_points_of_other_store_plugins(
    modules: set[str],
) -> None:
    # Discovery imported both installed store plugins' entry points ...
    assert {"autoconfig_cache_redis.plugin", "autoconfig_cache_dynamodb.plugin"} <= modules
    # ... and nothing else of them.
    loaded = sorted(name for name in modules if name in OTHER_STORES_CODE)
    assert loaded == []


def test_run_does_not_import_the_cache_tools(modules: set[str]) -> None:
    # The `cache` subcommands are in the parser `run` builds, but their code loads only when
    # one of them runs.
    assert "autoconfig_cache.cli.cache_cmds" in modules
    loaded = sorted(name for name in modules if name in CACHE_TOOLS_CODE)
    assert loaded == []


def test_run_imports_the_store_audit_only_when_audits_start(modules: set[str]) -> None:
    # The probe's cache is empty and its stream unreachable: never ready, so no audit began.
    assert "autoconfig_cache.stream.manager" in modules
    assert "autoconfig_cache.audit" not in modules


def test_an_http_stream_builds_no_tls_context(report: dict[str, Any]) -> None:
    # The service built its stream client for an http:// URI, which tried to connect: loading
    # the system's CA bundle for it would be start-up time spent for nothing.
    assert report["stream_attempted"]
    assert report["tls_contexts"] == 0


def test_run_imports_aiohttp_only_off_the_event_loop_when_the_stream_connects(
    report: dict[str, Any],
) -> None:
    # Nothing on the start path (config, cache, store, status server, manager) imports aiohttp,
    # the ~165 ms of which would hold back /readyz: the stream client's first attempt does, in a
    # worker thread, while the event loop goes on serving.
    assert report["stream_attempted"]
    assert "aiohttp" in report["modules"]
    assert report["aiohttp_imports"] == [False]


def test_run_finds_plugins_and_its_version_without_importlib_metadata(modules: set[str]) -> None:
    # Plugin discovery ran (the installed store plugins' entry points are loaded), reading the
    # distributions' files directly (autoconfig_cache.distributions), not through the ~30 ms
    # of importlib.metadata's imports and scan.
    assert "autoconfig_cache_redis.plugin" in modules
    assert "autoconfig_cache.distributions" in modules
    assert "importlib.metadata" not in modules
