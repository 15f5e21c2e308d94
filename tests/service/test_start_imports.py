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

from tests.cli.conftest import clean_environ
from tests.services import free_port

# Runs `autoconfig-cache run` as the console script does, with `serve` replaced by a start and
# a close of the same Service, then prints the imported modules as JSON.
PROBE = """
import json, sys
import autoconfig_cache.service.runner as runner
from autoconfig_cache.cli.main import main

async def start_then_close(config):
    service = runner.Service(config)
    await service.start()
    await service.close()
    print(json.dumps({"started": True, "modules": sorted(sys.modules)}))
    return 0

runner.serve = start_then_close
sys.exit(main(["run", "--log-level", "error"]))
"""

#: Packages the SQLite start path has no use for: rich prints the tools' tables, the others are
#: the clients of stores that are not configured.
UNNEEDED = ("rich", "redis", "pynamodb", "botocore", "boto3")


def start_path_modules(tmp_path: Path) -> set[str]:
    """The modules imported by ``run`` with an SQLite store, up to a started service."""
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
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["started"]
    return set(report["modules"])


def test_run_with_sqlite_imports_neither_rich_nor_other_store_clients(tmp_path: Path) -> None:
    modules = start_path_modules(tmp_path)
    # The probe did walk the start path: the SQLite store and the status server are loaded.
    assert "autoconfig_cache.stores.sqlite" in modules
    assert "autoconfig_cache.service.status" in modules
    loaded = sorted(name for name in modules if name.split(".")[0] in UNNEEDED)
    assert loaded == []


def test_run_does_not_import_the_local_stream_server(tmp_path: Path) -> None:
    modules = start_path_modules(tmp_path)
    assert "autoconfig_cache.stream.manager" in modules
    assert "autoconfig_cache.stream.server" not in modules
    assert "autoconfig_cache.demo" not in modules
