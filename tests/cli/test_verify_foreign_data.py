"""``cache verify`` and ``inspect`` name foreign and damaged store data, and verify exits 1.

The real command line in a subprocess, on an SQLite store another program wrote into.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.items import env_json

from .conftest import run_cli, seed

KEY = "key-current-0001"


def seeded(tmp_path: Path) -> Path:
    db = tmp_path / "cache.db"
    seed(
        f"sqlite://{db}",
        {"environments": {"e1": env_json("e1", 3), "e2": env_json("e2", 3)}, "filters": {}},
        encryption_key=KEY,
    )
    with sqlite3.connect(db) as conn:
        # A row whose blob is text, a row whose field is a blob, and an inflated version.
        conn.execute("INSERT INTO autoconfig_cache VALUES ('test', 'env:text', 2, 'hello')")
        conn.execute("INSERT INTO autoconfig_cache VALUES ('test', x'656e763a62', 2, x'00')")
        conn.execute("UPDATE autoconfig_cache SET version = 1e125 WHERE field = 'env:e2'")
    return db


def test_verify_names_foreign_rows_and_inflated_versions_and_exits_1(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    # The row with a text blob used to end verify with a TypeError traceback.
    seeded(tmp_path)
    result = run_cli(["cache", "verify", "--json"], store_env())
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["checked"] == 4
    problems = {problem["field"]: problem for problem in report["problems"]}
    assert {field: problem["reason"] for field, problem in problems.items()} == {
        "env:text": "foreign-data",
        "<binary field b'env:b'>": "foreign-data",
        "env:e2": "invalid-version",
    }
    assert "the blob is TEXT, not BLOB" in problems["env:text"]["message"]


def test_verify_table_and_inspect_show_the_problems_as_text(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path)
    verify = run_cli(["cache", "verify"], store_env())
    assert verify.returncode == 1, verify.stderr
    assert "FAILED: 1 of 4" in verify.stdout
    assert "foreign-data" in verify.stdout and "invalid-version" in verify.stdout
    inspect = run_cli(["cache", "inspect", "--json"], store_env())
    assert inspect.returncode == 0, inspect.stderr
    statuses = {
        record["field"]: (record["problem"] or {}).get("reason")
        for record in json.loads(inspect.stdout)["records"]
    }
    assert statuses == {
        "env:e1": None,
        "env:e2": "invalid-version",
        "env:text": "foreign-data",
        "<binary field b'env:b'>": "foreign-data",
    }
