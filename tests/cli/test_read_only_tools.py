"""``cache inspect``, ``verify`` and ``export`` on SQLite: they create nothing, and a target that
holds nothing (no file, no table, no record under the cache key) is exit status 3 naming what was
looked for, unless ``--allow-empty``. Also the documented SQLite URL forms, through the real CLI.

Redis and DynamoDB: ``test_read_only_tools_redis.py`` and ``test_read_only_tools_dynamodb.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest

from autoconfig_cache import AutoConfigCache, ItemKind
from autoconfig_cache.demo.data import sample_put_data
from tests.cli.conftest import load, run_cli, seed
from tests.secret_values import known_secret

KEY = known_secret("key-read-only-tools-0001")
READ_ONLY_TOOLS = (["inspect"], ["verify"], ["export"])
#: The exit status of "nothing there" (docs/operations.md, "Exit statuses").
NOTHING_THERE = 3


def env_for(url: str, cache_key: str = "test", **extra: str) -> dict[str, str]:
    return {
        "AUTO_CONFIG_CACHE_STORE": url,
        "AUTO_CONFIG_CACHE_KEY": cache_key,
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
        **extra,
    }


def tree(root: Path) -> list[str]:
    """Every path under ``root``, relative, sorted: what a command may have created."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def seed_sample(url: str, cache_key: str = "test") -> None:
    seed(url, sample_put_data(environments=2, filters=1), encryption_key=KEY, cache_key=cache_key)


# -- nothing is created ---------------------------------------------------------------------


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_a_missing_directory_is_not_created_and_exits_3_naming_the_url_and_key(
    tmp_path: Path, tool: list[str]
) -> None:
    url = f"sqlite://{tmp_path}/nodir/x.db"
    result = run_cli(["cache", *tool], env_for(url, cache_key="prod-cache"))
    assert result.returncode == NOTHING_THERE, (result.stdout, result.stderr)
    assert tree(tmp_path) == []
    assert url in result.stderr and "'prod-cache'" in result.stderr
    assert "--allow-empty" in result.stderr
    assert result.stdout == ""  # nothing a script could mistake for a result


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_a_missing_file_in_an_existing_directory_is_not_created(
    tmp_path: Path, tool: list[str]
) -> None:
    result = run_cli(["cache", *tool], env_for(f"sqlite://{tmp_path}/x.db"))
    assert result.returncode == NOTHING_THERE, result.stderr
    assert tree(tmp_path) == []


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_a_database_without_the_table_gets_no_table(tmp_path: Path, tool: list[str]) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE unrelated (x)")
    connection.close()
    result = run_cli(["cache", *tool], env_for(f"sqlite://{db}"))
    assert result.returncode == NOTHING_THERE, result.stderr
    with sqlite3.connect(db) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    connection.close()
    assert tables == ["unrelated"]


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_a_mistyped_cache_key_exits_3_naming_it(tmp_path: Path, tool: list[str]) -> None:
    url = f"sqlite://{tmp_path}/cache.db"
    seed_sample(url, cache_key="prod-cache")
    result = run_cli(["cache", *tool], env_for(url, cache_key="prod-cahce"))
    assert result.returncode == NOTHING_THERE, result.stderr
    assert "'prod-cahce'" in result.stderr and url in result.stderr


def test_the_store_password_is_masked_in_the_nothing_there_message(tmp_path: Path) -> None:
    password = known_secret("read-only-tools-password-4821")
    url = f"sqlite://{tmp_path}/x.db?password={password}"
    result = run_cli(["cache", "verify"], env_for(url))
    assert result.returncode == NOTHING_THERE, result.stderr
    assert password not in result.stderr and f"sqlite://{tmp_path}/x.db?password=****" in (
        result.stderr
    )


def test_export_to_a_file_writes_no_file_when_nothing_is_there(tmp_path: Path) -> None:
    target = tmp_path / "out" / "export.json"
    target.parent.mkdir()
    result = run_cli(
        ["cache", "export", "-o", str(target)], env_for(f"sqlite://{tmp_path}/missing.db")
    )
    assert result.returncode == NOTHING_THERE, result.stderr
    assert tree(tmp_path) == ["out"]


# -- --allow-empty ----------------------------------------------------------------------------


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_allow_empty_exits_0_and_still_creates_nothing(tmp_path: Path, tool: list[str]) -> None:
    result = run_cli(["cache", *tool, "--allow-empty"], env_for(f"sqlite://{tmp_path}/nodir/x.db"))
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path) == []


def test_allow_empty_results_say_empty(tmp_path: Path) -> None:
    env = env_for(f"sqlite://{tmp_path}/x.db")
    inspected = run_cli(["cache", "inspect", "--json", "--allow-empty"], env)
    verified = run_cli(["cache", "verify", "--json", "--allow-empty"], env)
    exported = run_cli(["cache", "export", "--allow-empty"], env)
    assert json.loads(inspected.stdout)["records"] == []
    assert (json.loads(verified.stdout)["ok"], json.loads(verified.stdout)["checked"]) == (True, 0)
    assert json.loads(exported.stdout) == {"environments": {}, "filters": {}}


# -- what is there is read, and damage is still exit 1 ---------------------------------------


def test_a_cache_key_holding_only_a_tombstone_is_not_empty(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/cache.db"
    seed(url, sample_put_data(environments=1, filters=0), encryption_key=KEY)
    (env_id,) = load(url, encryption_key=KEY).snapshot.environments

    async def delete_and_keep_the_tombstone() -> None:
        async with AutoConfigCache.open(url, cache_key="test", encryption_key=KEY) as cache:
            assert await cache.delete(ItemKind.ENVIRONMENT, env_id, 2)

    asyncio.run(delete_and_keep_the_tombstone())
    for tool in READ_ONLY_TOOLS:
        result = run_cli(["cache", *tool], env_for(url))
        assert result.returncode == 0, (tool, result.stderr)


def test_verify_still_exits_1_on_a_damaged_item(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    seed_sample(f"sqlite://{db}")
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE autoconfig_cache SET blob = x'00' WHERE field = "
            "(SELECT min(field) FROM autoconfig_cache)"
        )
    connection.close()
    result = run_cli(["cache", "verify", "--allow-empty"], env_for(f"sqlite://{db}"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "FAILED: 2 of 3" in result.stdout


def test_reading_an_existing_cache_does_not_change_it(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    seed_sample(f"sqlite://{db}")
    before = (db.read_bytes(), os.stat(db).st_mode)
    for tool in READ_ONLY_TOOLS:
        assert run_cli(["cache", *tool], env_for(f"sqlite://{db}")).returncode == 0
    assert (db.read_bytes(), os.stat(db).st_mode) == before


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_help_documents_the_exit_statuses_and_allow_empty(tool: list[str]) -> None:
    result = run_cli(["cache", *tool, "--help"], {"COLUMNS": "100"})
    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert "--allow-empty" in text
    assert re.search(r"Exit status: 0 .*; 1 .*; 2 usage error; 3 nothing there", text), text


# -- the documented URL forms ----------------------------------------------------------------


def test_a_relative_url_reads_from_the_working_directory_and_is_shown_as_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "data").mkdir()
    seed_sample(f"sqlite://{tmp_path}/data/cache.db")
    for url in ("sqlite:data/cache.db", "sqlite:./data/cache.db"):
        result = run_cli(["cache", "inspect", "--json"], env_for(url), cwd=tmp_path)
        assert result.returncode == 0, (url, result.stderr)
        shown = json.loads(result.stdout)
        assert (shown["store"], len(shown["records"])) == (url, 3)


@pytest.mark.parametrize("url", ["sqlite:~/cache.db", "sqlite:///~/cache.db"])
def test_a_url_in_the_home_directory_reads_from_there(tmp_path: Path, url: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    seed_sample(f"sqlite://{home}/cache.db")
    result = run_cli(["cache", "inspect", "--json"], env_for(url, HOME=str(home)))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["store"], len(shown["records"])) == (url, 3)


def test_four_slashes_are_shown_as_written(tmp_path: Path) -> None:
    seed_sample(f"sqlite://{tmp_path}/cache.db")
    url = f"sqlite:///{tmp_path}/cache.db"  # sqlite:////tmp/...: the same absolute path
    result = run_cli(["cache", "inspect", "--json"], env_for(url))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["store"] == url


def test_a_url_with_a_host_suggests_a_form_that_works(tmp_path: Path) -> None:
    seed_sample(f"sqlite://{tmp_path}/cache.db")
    refused = run_cli(["cache", "inspect"], env_for("sqlite://cache.db"), cwd=tmp_path)
    assert refused.returncode == 1
    suggested = re.search(r"\((sqlite:[^ )]+)\)", refused.stderr)
    assert suggested is not None, refused.stderr
    assert suggested.group(1) == "sqlite:cache.db"
    accepted = run_cli(["cache", "inspect", "--json"], env_for(suggested.group(1)), cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert len(json.loads(accepted.stdout)["records"]) == 3


def test_import_writes_where_the_relative_url_points(tmp_path: Path) -> None:
    # The same URL through a writing tool: `import` into sqlite:cache.db creates ./cache.db.
    export = tmp_path / "put.json"
    export.write_text(json.dumps(sample_put_data(environments=1, filters=0)))
    result = run_cli(["cache", "import", str(export)], env_for("sqlite:cache.db"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(load(f"sqlite://{tmp_path}/cache.db", encryption_key=KEY).snapshot) == 1
