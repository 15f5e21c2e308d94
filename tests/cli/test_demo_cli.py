"""``autoconfig-cache demo``: what ``--keep`` leaves and prints, Ctrl-C, ``--config`` refused."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import CLI, clean_environ, run_cli

#: The environments the demo's cache holds at the end: 6, then 1 added and 1 deleted.
DEMO_ENVIRONMENTS = 6


@pytest.fixture
def kept_folders() -> Iterator[list[Path]]:
    """Folders a ``demo --keep`` left in the temporary directory, removed after the test."""
    folders: list[Path] = []
    yield folders
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _kept_folder(stdout: str) -> Path:
    found = re.search(r"^Kept (\S+)$", stdout, re.MULTILINE)
    assert found, stdout
    return Path(found.group(1))


def _env_file_values(path: Path) -> dict[str, str]:
    """The variables of an env file, read as `set -a; . FILE` would (shell quoting undone)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, quoted = line.partition("=")
            (values[name],) = shlex.split(quoted)
    return values


def test_keep_writes_the_settings_to_a_private_env_file_that_inspects_the_cache(
    kept_folders: list[Path],
) -> None:
    result = run_cli(["demo", "--keep"], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = _kept_folder(result.stdout)
    kept_folders.append(folder)

    env_file = folder / "demo.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = _env_file_values(env_file)
    assert set(values) == {"AUTO_CONFIG_CACHE_STORE", "AUTO_CONFIG_CACHE_KEY", "AUTO_CONFIG_KEY"}
    assert values["AUTO_CONFIG_CACHE_STORE"] == f"sqlite://{folder / 'autoconfig-cache.db'}"
    # The terminal shows every variable, the key masked only.
    key = values["AUTO_CONFIG_KEY"]
    assert key not in result.stdout and key not in result.stderr
    assert f"AUTO_CONFIG_KEY=****{key[-4:]}" in result.stdout
    for name in ("AUTO_CONFIG_CACHE_STORE", "AUTO_CONFIG_CACHE_KEY"):
        assert f"{name}={values[name]}" in result.stdout

    # The variables open the kept cache: every environment decrypts.
    inspected = run_cli(["cache", "inspect", "--json"], env=values)
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    records = json.loads(inspected.stdout)["records"]
    live = [r for r in records if r["kind"] == "environment" and not r["deleted"]]
    assert len(live) == DEMO_ENVIRONMENTS
    assert all(r["problem"] is None for r in records), records

    # And so does the command the demo printed, run as printed in a shell.
    printed = re.search(r"^\s*(\(set -a; \. .+\))$", result.stdout, re.MULTILINE)
    assert printed, result.stdout
    shell = subprocess.run(
        ["/bin/sh", "-c", printed.group(1)],
        env=clean_environ({"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert "web/production" in shell.stdout and key not in shell.stdout


def test_without_keep_nothing_is_left_and_no_env_file_is_written() -> None:
    result = run_cli(["demo"], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    database = re.search(r"SQLite cache: (\S+?);", result.stdout)
    assert database is not None
    assert not Path(database.group(1)).parent.exists()
    assert "demo.env" not in result.stdout


def test_ctrl_c_stops_the_demo_with_exit_130_and_no_traceback() -> None:
    # FORCE_COLOR makes the demo's console a terminal, which paces the timeline for a reader
    # (about 0.6 s a step): the signal lands while it runs, not after it ended.
    process = subprocess.Popen(
        [*CLI, "demo"],
        env=clean_environ({"FORCE_COLOR": "1"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell that started pytest in the background may ignore SIGINT for its children;
        # a person's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        seen = ""
        while "Instance A starts" not in seen:
            line = process.stdout.readline()
            assert line, f"the demo ended before its second step: {seen}"
            seen += line
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = seen + rest
    assert process.returncode == 130, output + stderr
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stderr
    assert "Done in" not in output  # it stopped, rather than running to its end
    database = re.search(r"SQLite cache: (\S+?);", output)
    assert database is not None
    assert not Path(database.group(1)).parent.exists()  # the temporary folder is removed


@pytest.mark.parametrize(
    "args",
    [["demo", "--config", "x.toml"], ["--config", "x.toml", "demo"]],
    ids=["after", "before"],
)
def test_config_is_refused_rather_than_ignored(args: list[str]) -> None:
    result = run_cli(args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--config" in result.stderr
    assert "LaunchDarkly is up" not in result.stdout  # the demo did not run
