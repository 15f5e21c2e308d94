"""``autoconfig-cache run --once`` as a real process, against the local stream server."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from autoconfig_cache.secrets import mask
from autoconfig_cache.service.once import EXIT_NO_DATA, EXIT_STREAM_REQUIRED
from tests.cli.conftest import KNOWN_SDK_KEY, run_cli
from tests.service.conftest import AUTOCONFIG_KEY, StreamServerProcess, initial_data

ENV_IDS = sorted(initial_data()["environments"])


def once_env(stream: StreamServerProcess, store: Path) -> dict[str, str]:
    return {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream.uri,
        "AUTO_CONFIG_CACHE_STORE": f"sqlite:///{store}",
        "AUTO_CONFIG_CACHE_KEY": "once",
    }


def test_once_with_the_stream_up_prints_every_environment_with_keys_masked(
    tmp_path: Path, stream_server: StreamServerProcess
) -> None:
    result = run_cli(["run", "--once"], once_env(stream_server, tmp_path / "cache.db"))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert sorted(document) == ENV_IDS
    assert KNOWN_SDK_KEY not in result.stdout
    assert mask(KNOWN_SDK_KEY) in {env["sdkKey"]["value"] for env in document.values()}
    assert "comes from the cache" not in result.stderr  # it came from the stream


@pytest.mark.prints_secrets
def test_once_with_include_secrets_prints_the_keys(
    tmp_path: Path, stream_server: StreamServerProcess
) -> None:
    result = run_cli(
        ["run", "--once", "--include-secrets"], once_env(stream_server, tmp_path / "cache.db")
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert KNOWN_SDK_KEY in {env["sdkKey"]["value"] for env in document.values()}


def test_once_with_output_file_writes_the_file_with_keys_in_clear(
    tmp_path: Path, stream_server: StreamServerProcess
) -> None:
    target = tmp_path / "environments.json"
    result = run_cli(
        ["run", "--once", "--output-file", str(target)],
        once_env(stream_server, tmp_path / "cache.db"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    document = json.loads(target.read_text())
    assert sorted(document) == ENV_IDS
    assert KNOWN_SDK_KEY in {env["sdkKey"]["value"] for env in document.values()}


def test_once_with_the_stream_down_answers_from_the_cache_the_stream_warmed(
    tmp_path: Path, stream_server: StreamServerProcess
) -> None:
    env = once_env(stream_server, tmp_path / "cache.db")
    # The first --once writes the stream's put to the cache, as a run would.
    assert run_cli(["run", "--once"], env).returncode == 0
    stream_server.go_down()
    result = run_cli(["run", "--once", "--once-timeout", "1"], env)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)) == ENV_IDS
    assert "comes from the cache (cache key once)" in result.stderr
    assert " s ago" in result.stderr

    required = run_cli(["run", "--once", "--once-timeout", "1", "--require-stream"], env)
    assert required.returncode == EXIT_STREAM_REQUIRED, required.stderr
    assert required.stdout == ""
    assert "--require-stream" in required.stderr


def test_once_with_neither_stream_nor_cache_exits_with_no_data(
    tmp_path: Path, stream_server: StreamServerProcess
) -> None:
    stream_server.go_down()
    result = run_cli(
        ["run", "--once", "--once-timeout", "1"], once_env(stream_server, tmp_path / "empty.db")
    )
    assert result.returncode == EXIT_NO_DATA, result.stderr
    assert result.stdout == ""
    assert "no configuration" in result.stderr


def test_once_without_a_store_and_the_stream_down_exits_with_no_data(
    stream_server: StreamServerProcess,
) -> None:
    stream_server.go_down()
    env = {"AUTO_CONFIG_KEY": AUTOCONFIG_KEY, "STREAM_URI": stream_server.uri}
    result = run_cli(["run", "--once", "--once-timeout", "1"], env)
    assert result.returncode == EXIT_NO_DATA, result.stderr
