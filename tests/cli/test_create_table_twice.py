"""``cache create-table`` says what it did: created, already there, or nothing to create."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import run_cli

StoreEnv = Callable[..., dict[str, str]]


def test_the_second_create_table_says_the_storage_already_exists(store_env: StoreEnv) -> None:
    env = store_env()
    first = run_cli(["cache", "create-table"], env)
    second = run_cli(["cache", "create-table"], env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "created the storage of sqlite://" in first.stdout
    assert "already exists" in second.stdout and "created" not in second.stdout


def test_create_table_json_reports_created_then_exists(store_env: StoreEnv, tmp_path: Path) -> None:
    env = store_env("json.db")
    results = [json.loads(run_cli(["cache", "create-table", "--json"], env).stdout) for _ in "12"]
    assert [r["result"] for r in results] == ["created", "exists"]
    assert (tmp_path / "json.db").exists()


def test_a_store_with_nothing_to_create_says_so() -> None:
    result = run_cli(
        ["cache", "create-table"],
        {
            "AUTO_CONFIG_CACHE_STORE": "memory://",
            "AUTO_CONFIG_CACHE_KEY": "k",
            "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": "key-current-0001",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "nothing to create" in result.stdout
