"""Shared pieces of the resilience scenarios: real ``run`` processes, real servers, and checks.

Every scenario runs ``autoconfig-cache run`` subprocesses at DEBUG logging against the local
stream server (a subprocess) and a real store server on loopback. Three things are shared here:

* :class:`Model` — the AutoConfig ordering rules (docs/stream.md, "Ordering rules"), applied to
  the events a test sends, so the expected final state is computed independently of the code
  under test (the local stream server applies every event verbatim, stale ones included, so its
  own snapshot is not the expected state once stale events were sent).
* :class:`LeakWatch` — collects every log file, CLI output and ``/status``/``/metrics`` body of a
  scenario and finds any SDK key, mobile key, AutoConfig key or encryption key in clear.
* :func:`record_figures` — the per-scenario figures (updates lost, time to converge, items
  skipped vs. corrupted), printed and written to ``resilience-figures.json`` in pytest's base
  temporary directory (or to ``$AUTOCONFIG_RESILIENCE_FIGURES`` when set).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache import AutoConfigCache
from autoconfig_cache.demo.data import environment_json, sdk_key_for
from autoconfig_cache.models import Snapshot
from tests.cli.conftest import run_cli
from tests.secret_values import known_secret
from tests.service.conftest import AUTOCONFIG_KEY, ServiceProcess, StreamServerProcess

#: The encryption key of every scenario's cache (distinct from the AutoConfig key, so both are
#: watched for).
ENCRYPTION_KEY = known_secret("enc-3c8d1f0a-77e2-4b59-9d0e-resilience-secret")
CACHE_KEY = "resilience"
#: The ``Field -> version`` map of a state, e.g. ``{"env:abc": 3, "filter:f1": 2}``.
Versions = dict[str, int]

# Anything shaped like a LaunchDarkly SDK or mobile key (or the first 12 characters of one): the
# generated keys all have this shape, so any match in an output is a key shown in clear.
_KEY_SHAPE = re.compile(r"\b(?:sdk|mob)-[0-9a-f]{8}")


# ---- data -------------------------------------------------------------------------------------


def env_id(index: int) -> str:
    """A 24-hex-digit environment id, as LaunchDarkly's."""
    return f"{index:024x}"


def environment(item_id: str, version: int) -> dict[str, Any]:
    """An environment with an SDK key, a mobile key and an expiring SDK key, all key-shaped and
    different for every (id, version)."""
    data = environment_json(
        item_id,
        env_key=f"env-{item_id[-6:]}",
        env_name=f"Env {item_id[-6:]} v{version}",
        version=version,
    )
    data["sdkKey"]["expiring"] = {
        "value": sdk_key_for(item_id, version + 1_000_000, "sdk"),
        "timestamp": 1_700_000_000_000,
    }
    return data


def filter_json(item_id: str, version: int) -> dict[str, Any]:
    """A payload filter (its id is the map key, not a field)."""
    return {"projKey": "web", "key": f"key-{item_id}", "version": version}


def put_data(environments: int, filters: int, version: int = 1) -> dict[str, Any]:
    """Put data: ``environments`` environments and ``filters`` filters, all at ``version``."""
    return {
        "environments": {env_id(i): environment(env_id(i), version) for i in range(environments)},
        "filters": {
            f"filter{i:04d}": filter_json(f"filter{i:04d}", version) for i in range(filters)
        },
    }


def versions_of(data: Mapping[str, Any]) -> Versions:
    """The expected store fields of put data."""
    result = {f"env:{k}": int(v["version"]) for k, v in data["environments"].items()}
    result.update({f"filter:{k}": int(v["version"]) for k, v in data["filters"].items()})
    return result


def snapshot_versions(snapshot: Snapshot) -> Versions:
    """Field -> version of a decoded snapshot."""
    result = {f"env:{k}": v.version for k, v in snapshot.environments.items()}
    result.update({f"filter:{k}": v.version for k, v in snapshot.filters.items()})
    return result


def status_versions(status: Mapping[str, Any]) -> Versions:
    """Field -> version of what a ``run`` process serves, from its ``/status``."""
    result = {f"env:{k}": int(v["version"]) for k, v in status["environments"].items()}
    result.update({f"filter:{k}": int(v["version"]) for k, v in status["filters"].items()})
    return result


def diff(expected: Versions, found: Versions) -> dict[str, tuple[int | None, int | None]]:
    """Fields whose version differs: field -> (expected, found)."""
    return {
        field: (expected.get(field), found.get(field))
        for field in sorted(set(expected) | set(found))
        if expected.get(field) != found.get(field)
    }


class Model:
    """The ordering rules of docs/stream.md, on field names: what a correct consumer holds.

    An upsert is applied when its version is higher than both the live item's and the tombstone's;
    a delete removes a live item of a lower version and leaves a tombstone; a delete of a missing
    item only raises the tombstone.
    """

    def __init__(self, initial: Versions) -> None:
        self.live: Versions = dict(initial)
        self.tombstones: Versions = {}
        #: Accepted deletes, (field, version), in order.
        self.deletes: list[tuple[str, int]] = []
        self.accepted = 0
        self.ignored = 0

    def latest(self, field: str) -> int:
        """The highest version seen for ``field`` (live or deleted); 0 if never seen."""
        return max(self.live.get(field, 0), self.tombstones.get(field, 0))

    def upsert(self, field: str, version: int) -> bool:
        if version > self.latest(field):
            self.live[field] = version
            self.accepted += 1
            return True
        self.ignored += 1
        return False

    def delete(self, field: str, version: int) -> bool:
        current = self.live.get(field)
        if current is not None and current < version:
            del self.live[field]
            self.tombstones[field] = version
            self.deletes.append((field, version))
            self.accepted += 1
            return True
        self.tombstones[field] = max(self.tombstones.get(field, 0), version)
        self.ignored += 1
        return False


def send(server: StreamServerProcess, model: Model, field: str, version: int, delete: bool) -> None:
    """Send one patch or delete through the stream server and apply it to the model."""
    kind, item_id = field.split(":", 1)
    path = f"/{'environments' if kind == 'env' else 'filters'}/{item_id}"
    if delete:
        server.control("delete", {"path": path, "version": version})
        model.delete(field, version)
    else:
        data = environment(item_id, version) if kind == "env" else filter_json(item_id, version)
        server.control("patch", {"path": path, "data": data})
        model.upsert(field, version)


# ---- reading a store --------------------------------------------------------------------------


def open_cache(store_url: str, encryption_key: str = ENCRYPTION_KEY) -> AutoConfigCache:
    """A cache on the scenario's cache key (nothing connects until it is used)."""
    return AutoConfigCache.open(store_url, cache_key=CACHE_KEY, encryption_key=encryption_key)


def load_store(store_url: str) -> Any:
    """The store decoded through :class:`AutoConfigCache` (a ``LoadResult``)."""

    async def read() -> Any:
        async with open_cache(store_url) as cache:
            return await cache.get_all()

    return asyncio.run(read())


def store_versions(store_url: str) -> Versions | None:
    """Field -> version of what the store holds, decoded; ``None`` while it cannot be read."""
    try:
        result = load_store(store_url)
    except Exception:
        return None
    assert not result.report.skipped, result.report.skipped
    return snapshot_versions(result.snapshot)


def converge(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``condition()`` held, or ``None`` if it did not within ``timeout``."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(0.1)


# ---- processes --------------------------------------------------------------------------------


def service_env(stream_uri: str, store_url: str, **extra: str) -> dict[str, str]:
    """Settings of a ``run`` process: DEBUG logging, the scenario's store and keys."""
    env = {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream_uri,
        "AUTO_CONFIG_CACHE_STORE": store_url,
        "AUTO_CONFIG_CACHE_KEY": CACHE_KEY,
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "AUTO_CONFIG_CACHE_LOG_LEVEL": "DEBUG",
    }
    env.update(extra)
    return env


class LeakWatch:
    """Everything a scenario showed to an operator, to be searched for secrets in clear."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.texts: list[tuple[str, str]] = []
        #: Secrets searched for verbatim: the AutoConfig key, the encryption key, passwords.
        self.secrets: set[str] = {AUTOCONFIG_KEY, ENCRYPTION_KEY}
        #: SDK and mobile keys of the data sent; all key-shaped, so found by shape (10,000
        #: environments make 30,000 keys: one regular expression instead of 30,000 searches).
        self.item_keys = 0

    def add_text(self, source: str, text: str) -> None:
        self.texts.append((source, text))

    def add_file(self, path: Path) -> None:
        if path not in self.files:
            self.files.append(path)

    def add_secret(self, secret: str) -> None:
        self.secrets.add(secret)

    def add_item_key(self, key: str) -> None:
        # The shape search is only a valid check if every key of the data has the shape.
        assert _KEY_SHAPE.match(key), "test data key is not key-shaped"
        self.item_keys += 1

    def cli(self, args: list[str], env: Mapping[str, str]) -> Any:
        """Run the CLI at DEBUG logging; its output is watched."""
        result = run_cli(args, {**env, "AUTO_CONFIG_CACHE_LOG_LEVEL": "DEBUG"})
        self.add_text(f"cli {' '.join(args)} (stdout)", result.stdout)
        self.add_text(f"cli {' '.join(args)} (stderr)", result.stderr)
        return result

    def hits(self) -> list[str]:
        """``source: what`` for every secret found in clear (each secret masked in the report)."""
        found: list[str] = []
        sources = [(str(path), path.read_text(errors="replace")) for path in self.files]
        for source, text in [*sources, *self.texts]:
            for secret in self.secrets:
                if secret in text:
                    found.append(f"{source}: ****{secret[-4:]}")
            found.extend(
                f"{source}: key-shaped {m.group(0)[:4]}****" for m in _KEY_SHAPE.finditer(text)
            )
        return found

    def scanned(self) -> dict[str, int]:
        """How much was scanned (for the figures)."""
        size = sum(path.stat().st_size for path in self.files) + sum(
            len(text) for _, text in self.texts
        )
        return {
            "sources": len(self.files) + len(self.texts),
            "bytes": size,
            "secrets": len(self.secrets),
            "item_keys": self.item_keys,
        }


class WatchedService(ServiceProcess):
    """A ``run`` process whose log and HTTP bodies go into a :class:`LeakWatch`."""

    def __init__(self, watch: LeakWatch, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watch = watch
        watch.add_file(self.log)

    def wait_listening(self) -> WatchedService:
        super().wait_listening()
        return self

    def get(self, path: str) -> tuple[int, str]:
        code, text = super().get(path)
        if path in ("/status", "/metrics"):
            self.watch.add_text(f"{self.log.stem} {path}", text)
        return code, text

    def versions(self) -> Versions:
        return status_versions(self.status())

    def metric(self, name: str) -> float:
        """One sample of ``/metrics``."""
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(f"autoconfig_cache_{name} "):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)


@pytest.fixture
def watch() -> LeakWatch:
    """This scenario's leak watch (checked by the scenario itself, at its end)."""
    return LeakWatch()


def assert_no_leak(watch: LeakWatch, figures: dict[str, Any]) -> None:
    """Scenario 6, applied to one scenario: nothing it showed holds a secret in clear."""
    hits = watch.hits()
    debug_lines = sum(path.read_text(errors="replace").count(" DEBUG ") for path in watch.files)
    figures["secrets"] = {**watch.scanned(), "debug_lines": debug_lines, "hits": len(hits)}
    assert hits == [], hits[:20]
    assert debug_lines > 0  # the processes really logged at DEBUG


@pytest.fixture
def services(tmp_path: Path, watch: LeakWatch) -> Iterator[Callable[..., WatchedService]]:
    """Start watched ``run`` processes; any still running at the end is killed."""
    started: list[WatchedService] = []

    def start(env: Mapping[str, str], name: str = "run") -> WatchedService:
        service = WatchedService(watch, tmp_path, env, name=f"{name}-{len(started)}")
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


@pytest.fixture
def stream_factory(
    tmp_path: Path, watch: LeakWatch
) -> Iterator[Callable[..., StreamServerProcess]]:
    """Start local stream servers (the secrets of their data are watched); all stopped at the
    end."""
    started: list[StreamServerProcess] = []

    def start(data: Mapping[str, Any], port: int | None = None) -> StreamServerProcess:
        watch_data(watch, data)
        directory = tmp_path / "stream"
        directory.mkdir(exist_ok=True)
        server = StreamServerProcess(directory, data, port=port)
        watch.add_file(server.log)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def watch_data(watch: LeakWatch, data: Mapping[str, Any]) -> None:
    """Add every key of put data to the secrets watched for."""
    for env in data.get("environments", {}).values():
        for secret in (
            env["mobKey"],
            env["sdkKey"]["value"],
            env["sdkKey"].get("expiring", {}).get("value"),
        ):
            if secret:
                watch.add_item_key(secret)


# ---- figures ----------------------------------------------------------------------------------

_FIGURES: dict[str, Any] = {}


def record_figures(scenario: str, figures: Mapping[str, Any]) -> None:
    """Keep one scenario's figures for the session report, and print them (``-s``)."""
    _FIGURES[scenario] = dict(figures)
    print(f"\n[resilience] {scenario}: {json.dumps(figures, sort_keys=True)}")


@pytest.fixture(scope="session", autouse=True)
def figures_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Write every scenario's figures as one JSON file at the end of the session."""
    yield
    if not _FIGURES:
        return
    target = os.environ.get("AUTOCONFIG_RESILIENCE_FIGURES")
    path = Path(target) if target else tmp_path_factory.getbasetemp() / "resilience-figures.json"
    path.write_text(json.dumps(_FIGURES, indent=2, sort_keys=True) + "\n")
    print(f"\n[resilience] figures written to {path}")
