"""``cache inspect``, ``verify`` and ``export`` on a real moto server: a missing table is exit
status 3 naming the URL and cache key, and is never created — not even with the store option
``create_table=true``; an empty partition is exit 3 too; ``--allow-empty`` exits 0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoconfig_cache.demo.data import sample_put_data
from tests.cli.conftest import run_cli, seed
from tests.secret_values import known_secret
from tests.services import require_plugin

require_plugin("autoconfig_cache_dynamodb")
from tests.dynamodb.conftest import REGION, TABLE, MotoServer  # sets dummy AWS keys

KEY = known_secret("key-read-only-dynamo-0001")
READ_ONLY_TOOLS = (["inspect"], ["verify"], ["export"])
NOTHING_THERE = 3


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    server.create_table()
    yield server
    server.kill()


def url_for(moto: MotoServer, table: str, **options: str) -> str:
    query = "".join(f"&{name}={value}" for name, value in options.items())
    return f"dynamodb://{table}?region={REGION}&endpoint={moto.endpoint}{query}"


def env_for(url: str, cache_key: str) -> dict[str, str]:
    return {
        "AUTO_CONFIG_CACHE_STORE": url,
        "AUTO_CONFIG_CACHE_KEY": cache_key,
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
    }


def tables(moto: MotoServer) -> list[str]:
    names: list[str] = moto.client().list_tables()["TableNames"]
    return sorted(names)


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_a_missing_table_is_not_created_and_exits_3(moto: MotoServer, tool: list[str]) -> None:
    # create_table=true: a writing store would create it; a read-only tool must not.
    url = url_for(moto, "ro-missing-table", create_table="true")
    result = run_cli(["cache", *tool], env_for(url, "ro-cache"))
    assert result.returncode == NOTHING_THERE, (result.stdout, result.stderr)
    assert "dynamodb://ro-missing-table" in result.stderr and "'ro-cache'" in result.stderr
    assert tables(moto) == [TABLE]


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_allow_empty_on_a_missing_table_exits_0_and_creates_nothing(
    moto: MotoServer, tool: list[str]
) -> None:
    url = url_for(moto, "ro-missing-table", create_table="true")
    result = run_cli(["cache", *tool, "--allow-empty"], env_for(url, "ro-cache"))
    assert result.returncode == 0, result.stderr
    assert tables(moto) == [TABLE]


@pytest.mark.parametrize("tool", READ_ONLY_TOOLS, ids=lambda tool: tool[0])
def test_an_empty_partition_exits_3(moto: MotoServer, tool: list[str], tmp_path: Path) -> None:
    url = url_for(moto, TABLE)
    seed(url, sample_put_data(environments=1, filters=1), encryption_key=KEY, cache_key="ro-seeded")
    result = run_cli(["cache", *tool], env_for(url, f"ro-{tmp_path.name}"))
    assert result.returncode == NOTHING_THERE, (result.stdout, result.stderr)
    assert f"'ro-{tmp_path.name}'" in result.stderr
    assert run_cli(["cache", *tool], env_for(url, "ro-seeded")).returncode == 0
