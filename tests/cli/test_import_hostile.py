"""``cache import`` of hostile files: a clear one-line error, never a traceback, and nothing
written unless asked (``--skip-invalid``), through the real command line and a real SQLite store.

Before: deep nesting and a 5,000-digit number ended in tracebacks; a version of 2**62 or a lone
surrogate was found only when its item was written, after the items before it in the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import load, run_cli, seed
from tests.items import env_json, filter_json

KEY = "key-current-0001"  # the store_env fixture's encryption key
LONG_ID = "x" * 1100


def put_text(*bad_envs: tuple[str, str]) -> str:
    """Put data text: two good environments and a good filter first, then ``bad_envs`` as
    ``(map key, raw JSON of the item)``, written as text so that any JSON can be placed."""
    good = {"e1": env_json("e1", 3), "e2": env_json("e2", 4)}
    members = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in good.items()]
    members += [f"{json.dumps(key)}: {raw}" for key, raw in bad_envs]
    filters = json.dumps({"f1": filter_json(2)})
    return f'{{"environments": {{{", ".join(members)}}}, "filters": {filters}}}'


def env_with(env_id: str, **fields: Any) -> str:
    data = env_json(env_id, 1)
    data.update(fields)
    return json.dumps(data)


def raw_env(env_id: str, field: str, raw_value: str) -> str:
    """An environment whose ``field`` is the JSON text ``raw_value`` (numbers no Python value
    serialises to, escapes as a server would send them)."""
    data = env_json(env_id, 1)
    data.pop(field, None)
    return json.dumps(data)[:-1] + f", {json.dumps(field)}: {raw_value}}}"


# (name, put data text, fragments of the one-line error)
REFUSED_AS_A_WHOLE = [
    (
        "deep nesting",
        put_text(("deep", raw_env("deep", "extra", "[" * 5000 + "]" * 5000))),
        ["is not JSON", "nesting deeper than 1024"],
    ),
    (
        "a 5,000-digit number",
        put_text(("big", raw_env("big", "version", "1" + "0" * 5000))),
        ["is not JSON", "more than 4300 digits"],
    ),
]

INVALID_ITEMS = [
    ("version 2**62", put_text(("huge", env_with("huge", version=2**62))), "out of range"),
    ("version 10**400", put_text(("h400", raw_env("h400", "version", "1" + "0" * 400))), "digits"),
    ("version -1", put_text(("neg", env_with("neg", version=-1))), "out of range"),
    ("version 1e3", put_text(("flt", raw_env("flt", "version", "1e3"))), "got float"),
    (
        "a lone surrogate",
        put_text(("sur", raw_env("sur", "envName", '"\\ud800"'))),
        "lone surrogate",
    ),
    (
        "a surrogate in a key",
        put_text(("sk", raw_env("sk", "tags", '{"\\udfff": 1}'))),
        "lone surrogate",
    ),
    ("a 1,100-byte id", put_text((LONG_ID, env_with(LONG_ID))), "longer than 256 bytes"),
    (
        "a control character in the id",
        put_text(("e9\n\x1b[2J", env_with("e9\n\x1b[2J"))),
        "unprintable character '\\n'",
    ),
]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The store the CLI writes to, seeded with one environment the import must not disturb."""
    url = f"sqlite://{tmp_path / 'cache.db'}"
    seed(url, {"environments": {"keep": env_json("keep", 5)}, "filters": {}}, encryption_key=KEY)
    return url


def stored_ids(url: str) -> set[str]:
    snapshot = load(url, encryption_key=KEY).snapshot
    return {f"env:{k}" for k in snapshot.environments} | {f"filter:{k}" for k in snapshot.filters}


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("autoconfig-cache: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [pytest.param(text, fragments, id=name) for name, text, fragments in REFUSED_AS_A_WHOLE],
)
@pytest.mark.parametrize("skip_invalid", [False, True])
def test_a_file_no_parser_can_walk_is_refused_as_a_whole(
    tmp_path: Path,
    store_env: Callable[..., dict[str, str]],
    store_url: str,
    text: str,
    fragments: list[str],
    skip_invalid: bool,
) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8")
    args = ["cache", "import", str(path), *(["--skip-invalid"] if skip_invalid else [])]
    result = run_cli(args, store_env())
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    for fragment in [*fragments, "nothing was written"]:
        assert fragment in line
    assert stored_ids(store_url) == {"env:keep"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [pytest.param(text, fragment, id=name) for name, text, fragment in INVALID_ITEMS],
)
def test_a_file_with_an_invalid_item_writes_nothing_by_default(
    tmp_path: Path,
    store_env: Callable[..., dict[str, str]],
    store_url: str,
    text: str,
    fragment: str,
) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8")
    result = run_cli(["cache", "import", str(path)], store_env())
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "1 malformed item(s)" in line and fragment in line
    assert "nothing was written" in line and "--skip-invalid" in line
    assert line.isprintable()  # ids and values escaped: no newline, ESC or surrogate
    # The good items come first in the file: none of them was written before the bad one.
    assert stored_ids(store_url) == {"env:keep"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [pytest.param(text, fragment, id=name) for name, text, fragment in INVALID_ITEMS],
)
def test_skip_invalid_writes_the_good_items_lists_the_bad_and_exits_1(
    tmp_path: Path,
    store_env: Callable[..., dict[str, str]],
    store_url: str,
    text: str,
    fragment: str,
) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8")
    result = run_cli(["cache", "import", str(path), "--skip-invalid", "--json"], store_env())
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert sorted(report["written"]) == ["env:e1", "env:e2", "filter:f1"]
    assert report["skipped"] == []
    (problem,) = report["invalid"]
    assert fragment in problem
    invalid_lines = [line for line in result.stderr.splitlines() if line.startswith("invalid")]
    assert len(invalid_lines) == 1 and fragment in invalid_lines[0]
    assert invalid_lines[0].isprintable()
    assert stored_ids(store_url) == {"env:keep", "env:e1", "env:e2", "filter:f1"}


def test_skip_invalid_on_a_clean_file_exits_0(
    tmp_path: Path, store_env: Callable[..., dict[str, str]], store_url: str
) -> None:
    path = tmp_path / "clean.json"
    path.write_text(put_text(), encoding="utf-8")
    result = run_cli(["cache", "import", str(path), "--skip-invalid"], store_env())
    assert result.returncode == 0, result.stderr
    assert "3 item(s) written" in result.stdout
    assert stored_ids(store_url) == {"env:keep", "env:e1", "env:e2", "filter:f1"}


def test_every_invalid_item_is_named_when_skipped(
    tmp_path: Path, store_env: Callable[..., dict[str, str]], store_url: str
) -> None:
    bad = [(f"bad{i}", env_with(f"bad{i}", version=-i)) for i in range(1, 8)]
    path = tmp_path / "many.json"
    path.write_text(put_text(*bad), encoding="utf-8")
    refused = run_cli(["cache", "import", str(path)], store_env())
    assert "7 malformed item(s)" in one_error_line(refused.stderr)
    assert "(and 2 more)" in refused.stderr
    skipped = run_cli(["cache", "import", str(path), "--skip-invalid"], store_env())
    assert skipped.returncode == 1
    for i in range(1, 8):
        assert f"'bad{i}'" in skipped.stderr
    assert "7 invalid item(s) left out" in skipped.stdout
