"""Helpers for the sink tests: environments with random keys, changes, a hook script that records
what it received, and in-process sinks that record or misbehave on purpose."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.models import Environment
from autoconfig_cache.sinks import Change, ChangeKind, ChangeSource
from tests.items import env_json


def new_env_id() -> str:
    """An environment id shaped like LaunchDarkly's (24 hex digits)."""
    return secrets.token_hex(12)


def make_env(env_id: str | None = None, version: int = 1, **extra: Any) -> Environment:
    """An environment with random keys (see :func:`tests.items.env_json`)."""
    return Environment.from_json(env_json(env_id or new_env_id(), version, **extra))


def insert(env: Environment, source: ChangeSource = ChangeSource.STREAM) -> Change:
    return Change(ChangeKind.INSERT, env, source=source)


def update(previous: Environment, env: Environment) -> Change:
    return Change(ChangeKind.UPDATE, env, previous=previous)


def delete(env: Environment) -> Change:
    return Change(ChangeKind.DELETE, env)


def initialized(*envs: Environment, source: ChangeSource = ChangeSource.STREAM) -> Change:
    return Change(
        ChangeKind.INITIALIZED, source=source, environments={env.env_id: env for env in envs}
    )


async def eventually(predicate: Callable[[], bool], *, timeout: float = 15.0, what: str) -> None:
    """Wait until ``predicate`` holds; fail with ``what`` if it never does (a safety net against
    hanging, not a timing assertion)."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"condition never held: {what}")


# ---- a hook that records what it received ---------------------------------------------------------

#: The recording hook: writes one JSON file per run into the folder named by its first argument:
#: its argv, the names of its environment variables, the LDAC_* ones with their values, two
#: ordinary variables, and its stdin.
_RECORDER = """
import json, os, sys, time
folder = sys.argv[1]
record = {
    "argv": sys.argv,
    "names": sorted(os.environ),
    "ldac": {k: v for k, v in os.environ.items() if k.startswith("LDAC")},
    "passed": os.environ.get("HOOK_SETTING"),
    "stdin": sys.stdin.read(),
    "pid": os.getpid(),
}
path = os.path.join(folder, f"run-{time.time_ns()}-{os.getpid()}.json")
with open(path + ".part", "w") as out:
    json.dump(record, out)
os.replace(path + ".part", path)
sys.exit(int(os.environ.get("HOOK_EXIT", "0")))
"""


class Recorder:
    """A hook script (Python, run by this interpreter) and the runs it recorded."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "runs"
        self.folder.mkdir()
        self.script = folder / "record_hook.py"
        self.script.write_text(_RECORDER)

    def argv(self, *extra: str) -> list[str]:
        """The hook's argument list: no secret in it, only paths and ``extra``."""
        return [sys.executable, str(self.script), str(self.folder), *extra]

    def runs(self) -> list[dict[str, Any]]:
        """Every run recorded, oldest first."""
        paths = sorted(self.folder.glob("run-*.json"))
        return [json.loads(path.read_text()) for path in paths]

    def only_run(self) -> dict[str, Any]:
        runs = self.runs()
        assert len(runs) == 1, f"expected one run of the hook, got {len(runs)}"
        return runs[0]


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder(tmp_path)


# ---- in-process sinks ------------------------------------------------------------------------------


class RecordingSink:
    """Records ``(kind, env_id, version)`` of each delivery; deliveries for an environment in
    ``held`` wait until it is released."""

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.delivered: list[tuple[str, str | None, int | None]] = []
        self.held: dict[str, asyncio.Event] = {}
        self.running = 0
        self.most_running = 0
        self.closed = False

    def hold(self, env_id: str) -> None:
        self.held[env_id] = asyncio.Event()

    def release(self, env_id: str) -> None:
        self.held[env_id].set()

    async def deliver(self, change: Change) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            gate = self.held.get(change.env_id or "")
            if gate is not None:
                await gate.wait()
            # A few turns of the event loop, differing per version, to shuffle the deliveries
            # of different environments.
            for _ in range((change.version or 0) % 3):
                await asyncio.sleep(0)
            self.delivered.append((str(change.kind), change.env_id, change.version))
        finally:
            self.running -= 1

    async def close(self) -> None:
        self.closed = True

    def of(self, env_id: str) -> list[tuple[str, int | None]]:
        """The deliveries of one environment, in order."""
        return [(kind, version) for kind, eid, version in self.delivered if eid == env_id]

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.delivered]


class FailingSink:
    """Fails the first ``failures`` attempts of each change (``None``: every attempt), with a
    message that holds the environment's SDK key (which the dispatcher must mask)."""

    def __init__(self, failures: int | None = None, name: str = "failing") -> None:
        self.name = name
        self.failures = failures
        self.attempts: dict[tuple[str | None, int | None, str], int] = {}
        self.delivered: list[Change] = []

    async def deliver(self, change: Change) -> None:
        key = (change.env_id, change.version, str(change.kind))
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.failures is None or self.attempts[key] <= self.failures:
            secret = change.env.sdk_key if change.env is not None else "-"
            raise RuntimeError(f"the secret store refused key {secret}")
        self.delivered.append(change)

    async def close(self) -> None:
        pass


class HangingSink:
    """Never finishes a delivery; notes each cancellation."""

    def __init__(self, name: str = "hanging") -> None:
        self.name = name
        self.started = 0
        self.cancelled = 0

    async def deliver(self, change: Change) -> None:
        self.started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def close(self) -> None:
        pass


class NoWait:
    """Stands in for ``asyncio.sleep`` between attempts: records each delay, waits none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)
