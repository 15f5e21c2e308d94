"""Helpers for tests that need a real server (redis-server, moto_server, dynalite, ...).

Skip-or-fail comes from the conformance kit (:mod:`autoconfig_cache.testing.services`), which
third-party store authors use too: a missing server skips on a developer's machine and fails
when ``AUTOCONFIG_CACHE_REQUIRE_SERVICES=1``, as CI sets.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import shutil
import socket
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from autoconfig_cache.testing.services import (
    require_executable,
    service_missing,
    services_required,
)

__all__ = [
    "DYNALITE_VERSION",
    "dynalite_command",
    "free_port",
    "require_executable",
    "require_plugin",
    "service_missing",
    "services_required",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_plugin(module: str) -> ModuleType:
    """Import a store plugin, or skip (developer machine) / fail (CI) when it is not installed.

    Usable at module level, unlike :func:`service_missing`.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"plugin {module} is not installed ({exc})"
        if services_required():
            pytest.fail(f"required plugin missing: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


# ---------------------------------------------------------------------------------------------
# dynalite: a second, independent DynamoDB emulator (npm), installed by the suite itself
# ---------------------------------------------------------------------------------------------

#: Pinned: a new dynalite could change what the suite checks. 4.0.0 requires Node.js >= 20
#: (its package.json "engines") and keeps tables in memory (memory-level) unless given --path.
DYNALITE_VERSION = "4.0.0"
_NODE_MAJOR_REQUIRED = 20
#: Under the repository, beside .venv, and gitignored: a fresh clone installs it once.
_NPM_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "npm"
# Below the suite's 300 s per-test timeout, so that npm's own error is what is reported.
_NPM_INSTALL_TIMEOUT = 240.0

#: The outcome of the one installation attempt of this process: the command that runs dynalite,
#: or why it could not be had (a failed ``npm install`` is not retried by every test that asks).
_dynalite: list[str] | str | None = None


def dynalite_command() -> list[str]:
    """``[node, .../dynalite/cli.js]``, installed from npm on first use; skip/fail if impossible.

    Installed once into ``.cache/npm/dynalite-<version>/`` of the repository under a file lock,
    so that parallel test sessions neither race nor install twice. Without ``node`` or ``npm``,
    or when the install fails, the test is skipped, or fails with
    ``AUTOCONFIG_CACHE_REQUIRE_SERVICES=1`` as a missing ``redis-server`` does.
    """
    global _dynalite
    if _dynalite is None:
        _dynalite = _install_dynalite()
    if isinstance(_dynalite, str):
        service_missing(_dynalite)
    return list(_dynalite)


def _install_dynalite() -> list[str] | str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        return f"dynalite needs Node.js >= {_NODE_MAJOR_REQUIRED} and npm: {missing} not on PATH"
    major = _node_major(node)
    if major is None or major < _NODE_MAJOR_REQUIRED:
        return (
            f"dynalite {DYNALITE_VERSION} needs Node.js >= {_NODE_MAJOR_REQUIRED} (found {major})"
        )
    prefix = _NPM_CACHE / f"dynalite-{DYNALITE_VERSION}"
    cli = prefix / "node_modules" / "dynalite" / "cli.js"
    # Written last: a directory without it is an interrupted install, started over.
    complete = prefix / ".installed"
    _NPM_CACHE.mkdir(parents=True, exist_ok=True)
    with (_NPM_CACHE / f"dynalite-{DYNALITE_VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if complete.exists() and cli.exists():
            return [node, str(cli)]
        shutil.rmtree(prefix, ignore_errors=True)
        command = [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--prefix",
            str(prefix),
            f"dynalite@{DYNALITE_VERSION}",
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=_NPM_INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command[1:])}` did not finish within {_NPM_INSTALL_TIMEOUT:g}s"
        if result.returncode != 0 or not cli.exists():
            # npm says what went wrong first (error code, message) and where its log is last.
            lines = (result.stderr or result.stdout).strip().splitlines()
            said = " | ".join([*lines[:4], *lines[-1:]] if len(lines) > 5 else lines)
            return (
                f"could not install dynalite {DYNALITE_VERSION} from npm into {prefix} "
                f"(exit {result.returncode}): {said}"
            )
        installed = json.loads((cli.parent / "package.json").read_text())["version"]
        if installed != DYNALITE_VERSION:
            return f"npm installed dynalite {installed}, not the pinned {DYNALITE_VERSION}"
        complete.write_text(DYNALITE_VERSION + "\n")
        return [node, str(cli)]


def _node_major(node: str) -> int | None:
    """The major version of ``node`` (``v20.20.2`` -> 20), or None if it does not say."""
    try:
        output = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        return int(output.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
