"""Readable output through the real CLI: tables that fit 80 columns without breaking a word,
``--wide`` with every column whole, and ``--json`` on ``clear`` and ``create-table``
(docs/operations.md, "Output of the cache tools"). The stable ``export`` order:
``test_export_order_redis.py``.

The data is what makes tables too wide: environments whose project and environment keys and
names are long, in a store with a damaged item (for ``verify``'s table).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import stat
import struct
import subprocess
import termios
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from autoconfig_cache.cli.main import build_parser
from autoconfig_cache.demo.data import environment_json, sample_put_data
from tests.cli.conftest import CLI, clean_environ, load, run_cli, seed
from tests.cli.test_cache_commands import tamper
from tests.secret_values import find_secrets, known_secret

KEY = known_secret("key-readable-output-0001")
ELLIPSIS = "…"

#: (id, project key, project name, environment key, environment name): keys and names far
#: longer than an 80-column table has room for.
LONG_ENVIRONMENTS = (
    (
        "6123456789abcdef01234567",
        "customer-facing-storefront-platform",
        "Customer-facing storefront platform (EU region)",
        "production-eu-west-1-canary",
        "Production EU West 1 canary deployment",
    ),
    (
        "6123456789abcdef01234568",
        "internal-billing-reconciliation-service",
        "Internal billing reconciliation service",
        "staging-with-synthetic-customer-accounts",
        "Staging with synthetic customer accounts",
    ),
)

#: The columns each table shows by default and with --wide (docs/operations.md).
INSPECT_COLUMNS = ["kind", "id", "key", "version", "status"]
INSPECT_WIDE_COLUMNS = [
    "kind",
    "id",
    "key",
    "names",
    "version",
    "model",
    "key id",
    "cached at",
    "sdk key",
    "status",
]
VERIFY_COLUMNS = ["field", "problem", "detail"]
VERIFY_WIDE_COLUMNS = [*VERIFY_COLUMNS, "stored version", "key id", "cached at"]
PLUGINS_COLUMNS = ["name", "version", "schemes", "sink types", "error"]
PLUGINS_WIDE_COLUMNS = ["name", "version", "schemes", "sink types", "other hooks", "error"]


def long_data() -> dict[str, Any]:
    data = sample_put_data(environments=4, filters=2)
    for env_id, proj_key, proj_name, env_key, env_name in LONG_ENVIRONMENTS:
        data["environments"][env_id] = environment_json(
            env_id, proj_key=proj_key, proj_name=proj_name, env_key=env_key, env_name=env_name
        )
    return data


def store(tmp_path: Path, data: dict[str, Any] | None = None, name: str = "cache.db") -> str:
    url = f"sqlite://{tmp_path / name}"
    seed(url, data if data is not None else long_data(), encryption_key=KEY)
    return url


def env_for(url: str, columns: str = "80", **extra: str) -> dict[str, str]:
    return {
        "AUTO_CONFIG_CACHE_STORE": url,
        "AUTO_CONFIG_CACHE_KEY": "test",
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
        "COLUMNS": columns,
        **extra,
    }


def expected_keys(data: dict[str, Any]) -> dict[str, str]:
    """What the ``key`` column shows for each id: ``project/environment`` or ``project/filter``."""
    keys = {
        env_id: f"{env['projKey']}/{env['envKey']}" for env_id, env in data["environments"].items()
    }
    keys.update({fid: f"{flt['projKey']}/{flt['key']}" for fid, flt in data["filters"].items()})
    return keys


# -- reading a rendered table -----------------------------------------------------------------


def table_lines(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    bottom = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return lines[top : bottom + 1]


def cells(line: str, bar: str) -> list[str]:
    return [cell.strip() for cell in line[1:-1].split(bar)]


def headers(stdout: str) -> list[str]:
    """Each column's header, its lines joined with spaces: a folded ``version`` reads
    ``versi on``."""
    lines = table_lines(stdout)
    rule = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    rows = [cells(line, "┃") for line in lines[1:rule]]
    return [" ".join(part for part in column if part) for column in zip(*rows, strict=True)]


def body_rows(stdout: str) -> list[list[str]]:
    """The table's rows, each cell's lines joined with spaces (a row continues on the lines whose
    first cell is empty)."""
    lines = table_lines(stdout)
    rule = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    rows: list[list[list[str]]] = []
    for line in lines[rule + 1 : -1]:
        parts = cells(line, "│")
        if parts[0] or not rows:
            rows.append([[part] for part in parts])
        else:
            for column, part in zip(rows[-1], parts, strict=True):
                column.append(part)
    return [[" ".join(part for part in column if part) for column in row] for row in rows]


def whole_or_cut(shown: str, value: str) -> bool:
    """``shown`` is ``value`` whole, or its beginning cut at the end with ``…``."""
    return shown == value or (shown.endswith(ELLIPSIS) and value.startswith(shown[:-1]))


def words_whole(text: str, source_words: Iterable[str]) -> list[str]:
    """The words of ``text`` that are neither a word of the source nor one cut with ``…``."""
    known = set(source_words)
    return [
        word
        for word in text.split()
        if word not in known
        and not (word.endswith(ELLIPSIS) and any(k.startswith(word[:-1]) for k in known))
    ]


def assert_fits(stdout: str, width: int = 80) -> None:
    too_long = [line for line in stdout.splitlines() if len(line) > width]
    assert not too_long, f"{len(too_long)} line(s) longer than {width}: {too_long[:3]}"


# -- 80 columns ----------------------------------------------------------------------------


def test_inspect_fits_80_columns_with_whole_headers_ids_and_keys(tmp_path: Path) -> None:
    data = long_data()
    url = store(tmp_path, data)
    result = run_cli(["cache", "inspect"], env_for(url))
    assert result.returncode == 0, result.stderr
    assert_fits(result.stdout)
    assert headers(result.stdout) == INSPECT_COLUMNS
    keys = expected_keys(data)
    rows = body_rows(result.stdout)
    assert sorted(row[1] for row in rows) == sorted(keys)  # one line per item, ids whole
    for kind, item_id, key, version, status in rows:
        assert kind == ("env" if item_id in data["environments"] else "filter")
        assert whole_or_cut(key, keys[item_id]), (key, keys[item_id])
        assert (version, status) == ("1", "ok")
    # The long keys did not fit: they are cut at the end, not folded onto other lines.
    assert any(row[2].endswith(ELLIPSIS) for row in rows)


def test_inspect_of_a_relay_store_fits_80_columns(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'relay.db'}"
    seed(url, long_data(), encryption_key=KEY, format="relay")
    result = run_cli(["cache", "inspect"], env_for(url, AUTO_CONFIG_CACHE_FORMAT="relay"))
    assert result.returncode == 0, result.stderr
    assert_fits(result.stdout)
    assert headers(result.stdout) == INSPECT_COLUMNS


def test_verify_problem_table_fits_80_columns_with_whole_words(tmp_path: Path) -> None:
    data = long_data()
    url = store(tmp_path, data)
    damaged = sorted(f"env:{env_id}" for env_id, *_ in LONG_ENVIRONMENTS)
    for field in damaged:
        tamper(tmp_path / "cache.db", field)
    report = json.loads(run_cli(["cache", "verify", "--json"], env_for(url)).stdout)
    messages = {problem["field"]: problem["message"] for problem in report["problems"]}

    result = run_cli(["cache", "verify"], env_for(url))
    assert result.returncode == 1, result.stderr
    assert_fits(result.stdout)
    assert headers(result.stdout) == VERIFY_COLUMNS
    rows = body_rows(result.stdout)
    assert [row[0] for row in rows] == damaged  # whole fields, sorted
    for field, problem, detail in rows:
        assert problem == "undecryptable"
        assert words_whole(detail, messages[field].split()) == []


def test_plugins_table_fits_80_columns_with_whole_words() -> None:
    listing = json.loads(run_cli(["plugins", "--json"]).stdout)
    result = run_cli(["plugins"], {"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert_fits(result.stdout)
    assert headers(result.stdout) == PLUGINS_COLUMNS
    rows = body_rows(result.stdout)
    assert [row[0] for row in rows] == [plugin["name"] for plugin in listing["plugins"]]
    source_words = ["-"] + [  # "-": a plugin with no store (the built-in sinks)
        word
        for plugin in listing["plugins"]
        for entry in plugin["stores"]
        for word in f"{entry['scheme']}, {entry['scheme']}: {entry['description']}".split()
    ]
    for row in rows:
        assert words_whole(row[2], source_words) == [], row


def test_results_written_to_a_pipe_are_80_columns_wide_even_from_a_wider_terminal(
    tmp_path: Path,
) -> None:
    """Without COLUMNS, a table piped on (``| less``, ``> file``) is laid out for 80 columns,
    whatever the size of the terminal the command was started from (here stdin, 200 columns)."""
    url = store(tmp_path)
    environ = clean_environ(env_for(url))
    del environ["COLUMNS"]
    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        result = subprocess.run(
            [*CLI, "cache", "inspect"],
            env=environ,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 0, result.stderr
    assert find_secrets(result.stdout + result.stderr) == []
    assert_fits(result.stdout)
    assert headers(result.stdout) == INSPECT_COLUMNS


def test_columns_sets_the_width_of_piped_results(tmp_path: Path) -> None:
    url = store(tmp_path)
    result = run_cli(["cache", "inspect"], env_for(url, columns="120"))
    assert result.returncode == 0, result.stderr
    widths = [len(line) for line in table_lines(result.stdout)]
    # More room than at 80: the long keys get it (the table grows past 80), up to 120.
    assert 80 < max(widths) <= 120


# -- --wide ---------------------------------------------------------------------------------


def test_inspect_wide_shows_every_column_and_every_value_whole(tmp_path: Path) -> None:
    data = long_data()
    url = store(tmp_path, data)
    result = run_cli(["cache", "inspect", "--wide"], env_for(url))
    assert result.returncode == 0, result.stderr
    assert headers(result.stdout) == INSPECT_WIDE_COLUMNS
    rows = {
        row[1]: dict(zip(INSPECT_WIDE_COLUMNS, row, strict=True))
        for row in body_rows(result.stdout)
    }
    keys = expected_keys(data)
    for env_id, env in data["environments"].items():
        row = rows[env_id]
        assert row["key"] == keys[env_id]
        assert row["names"] == f"{env['projName']} / {env['envName']}"
        assert row["sdk key"] == "****" + env["sdkKey"]["value"][-4:]
        assert row["key id"].endswith("(current)")
        assert row["model"].isdigit() and row["cached at"] != "-"
    assert not any(ELLIPSIS in line for line in result.stdout.splitlines())
    assert find_secrets(result.stdout) == []


def test_inspect_wide_of_a_relay_store_adds_the_derivation(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'relay.db'}"
    seed(url, long_data(), encryption_key=KEY, format="relay")
    result = run_cli(["cache", "inspect", "--wide"], env_for(url, AUTO_CONFIG_CACHE_FORMAT="relay"))
    assert result.returncode == 0, result.stderr
    wide_relay = [*INSPECT_WIDE_COLUMNS[:7], "derivation", *INSPECT_WIDE_COLUMNS[7:]]
    assert headers(result.stdout) == wide_relay
    assert {row[7] for row in body_rows(result.stdout)} == {"hkdf"}


def test_verify_wide_adds_stored_version_key_id_and_age(tmp_path: Path) -> None:
    url = store(tmp_path)
    field = f"env:{LONG_ENVIRONMENTS[0][0]}"
    tamper(tmp_path / "cache.db", field)
    records = json.loads(run_cli(["cache", "inspect", "--json"], env_for(url)).stdout)["records"]
    (damaged,) = [record for record in records if record["field"] == field]
    result = run_cli(["cache", "verify", "--wide"], env_for(url))
    assert result.returncode == 1
    assert headers(result.stdout) == VERIFY_WIDE_COLUMNS
    ((shown_field, problem, _, version, key_id, cached_at),) = body_rows(result.stdout)
    assert (shown_field, problem) == (field, "undecryptable")
    assert version == str(damaged["storedVersion"])
    assert key_id == f"{damaged['keyId']} (current)"  # the blob's header names its key
    assert cached_at == "-" and damaged["cachedAt"] is None  # sealed inside the blob


def test_plugins_wide_lists_the_other_hooks_whole() -> None:
    listing = json.loads(run_cli(["plugins", "--json"]).stdout)
    result = run_cli(["plugins", "--wide"], {"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert headers(result.stdout) == PLUGINS_WIDE_COLUMNS
    shown_hooks = {row[0]: row[4] for row in body_rows(result.stdout)}
    registrations = ("autoconfig_cache_register_stores", "autoconfig_cache_sink_types")
    for plugin in listing["plugins"]:
        hooks = [hook for hook in plugin["hooks"] if hook not in registrations]
        assert shown_hooks[plugin["name"]] == (" ".join(hooks) or "-")


# -- --json on every cache tool ---------------------------------------------------------------


def test_clear_json_reports_what_was_cleared(tmp_path: Path) -> None:
    data = long_data()
    url = store(tmp_path, data)
    result = run_cli(["cache", "clear", "--yes", "--json"], env_for(url))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "store": url,
        "cacheKey": "test",
        "cleared": len(data["environments"]) + len(data["filters"]),
    }
    assert len(load(url, encryption_key=KEY).snapshot) == 0


def test_create_table_json_on_sqlite_reports_created_then_exists(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'new.db'}"
    results = [run_cli(["cache", "create-table", "--json"], env_for(url)) for _ in range(2)]
    assert [result.returncode for result in results] == [0, 0], [r.stderr for r in results]
    assert [json.loads(result.stdout) for result in results] == [
        {"store": url, "scheme": "sqlite", "result": "created"},
        {"store": url, "scheme": "sqlite", "result": "exists"},
    ]
    assert stat.S_ISREG((tmp_path / "new.db").stat().st_mode)


def test_create_table_json_on_a_store_without_storage_says_nothing_to_create() -> None:
    result = run_cli(["cache", "create-table", "--json"], env_for("memory://"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "store": "memory://",
        "scheme": "memory",
        "result": "nothing-to-create",
    }


def test_export_json_with_an_output_file_summarises_what_was_written(tmp_path: Path) -> None:
    data = long_data()
    url = store(tmp_path, data)
    damaged = f"env:{LONG_ENVIRONMENTS[0][0]}"
    tamper(tmp_path / "cache.db", damaged)
    target = tmp_path / "backup.json"
    result = run_cli(["cache", "export", "-o", str(target), "--json"], env_for(url))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["file"] == str(target) and summary["masked"] is True
    assert summary["environments"] == len(data["environments"]) - 1
    assert summary["filters"] == len(data["filters"])
    assert [(s["field"], s["reason"]) for s in summary["skipped"]] == [(damaged, "undecryptable")]
    written = json.loads(target.read_text())
    assert len(written["environments"]) == summary["environments"]


def test_every_cache_tool_takes_json() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    cache = commands.choices["cache"]
    (tools,) = [a for a in cache._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"inspect", "verify", "export", "import", "rotate-key", "clear", "create-table"} <= set(
        tools.choices
    )
    for name, tool in tools.choices.items():
        assert "--json" in tool._option_string_actions, name
