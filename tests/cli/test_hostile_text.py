"""Values from data reach the terminal and the logs as text: never markup, never a new line.

Anyone who may edit an environment in LaunchDarkly chooses its name and key; the CLI's tables
and messages must show them literally (rich markup such as ``[/]`` crashed ``inspect``, ``verify``
and ``export`` with a ``MarkupError``), and a log line must not be forged by a newline in them.
"""

from __future__ import annotations

import io
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from autoconfig_cache.demo.data import environment_json
from autoconfig_cache.logsetup import escape_control
from tests.cli.conftest import captured_service_log, run_cli, seed
from tests.secret_values import known_secret

KEY = known_secret("key-current-0001")
CLOSING_TAG = "[/]"
LINK = "[link=https://evil.example/]click here[/link]"
#: An id with markup in it: ids are shown in the verify table and the export's skip lines.
HOSTILE_ID = "env[/]x"


def hostile_data() -> dict[str, object]:
    environments = {
        "env-closing": environment_json("env-closing", env_name=CLOSING_TAG),
        "env-link": environment_json("env-link", env_name=LINK, proj_name=":warning: [bold]x"),
        HOSTILE_ID: environment_json(HOSTILE_ID, env_name="[red]"),
    }
    return {"environments": environments, "filters": {}}


def tamper(db: Path, field: str) -> None:
    """Flip one bit of a stored record, so that it no longer decrypts."""
    with sqlite3.connect(db) as connection:
        (blob,) = connection.execute(
            "SELECT blob FROM autoconfig_cache WHERE field = ?", (field,)
        ).fetchone()
        changed = bytearray(blob)
        changed[-5] ^= 0x01
        connection.execute(
            "UPDATE autoconfig_cache SET blob = ? WHERE field = ?", (bytes(changed), field)
        )


@pytest.fixture
def hostile_store(tmp_path: Path) -> Path:
    db = tmp_path / "cache.db"
    seed(f"sqlite://{db}", hostile_data(), encryption_key=KEY)
    return db


def test_inspect_shows_markup_in_names_literally(
    hostile_store: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    result = run_cli(["cache", "inspect", "--wide"], store_env(COLUMNS="400"))  # with names
    assert result.returncode == 0, result.stderr
    assert "MarkupError" not in result.stderr
    assert f"Web storefront / {CLOSING_TAG}" in result.stdout
    # Shown as written, not turned into a link, bold text or an emoji.
    assert LINK in result.stdout
    assert ":warning: [bold]x" in result.stdout
    assert HOSTILE_ID in result.stdout


def test_verify_names_a_tampered_item_whose_id_holds_markup(
    hostile_store: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    tamper(hostile_store, f"env:{HOSTILE_ID}")
    result = run_cli(["cache", "verify"], store_env())
    assert result.returncode == 1, result.stderr
    assert "MarkupError" not in result.stderr
    assert f"env:{HOSTILE_ID}" in result.stdout
    assert "FAILED: 2 of 3 item(s)" in result.stdout


def test_verify_of_an_intact_hostile_cache_is_ok(
    hostile_store: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    result = run_cli(["cache", "verify"], store_env())
    assert result.returncode == 0, result.stderr
    assert "OK: 3 of 3" in result.stdout


def test_export_reports_a_skipped_item_whose_id_holds_markup(
    hostile_store: Path, store_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    tamper(hostile_store, f"env:{HOSTILE_ID}")
    target = tmp_path / "export.json"
    result = run_cli(["cache", "export", "-o", str(target)], store_env())
    assert result.returncode == 0, result.stderr
    assert "MarkupError" not in result.stderr
    assert f"env:{HOSTILE_ID}" in result.stderr
    text = target.read_text()
    assert CLOSING_TAG in text and LINK in text


def test_an_error_quoting_data_stays_on_one_line(
    store_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # The file name is quoted in the error; a newline in it must not start a second line.
    missing = tmp_path / "no\nsuch [/] file.json"
    result = run_cli(["cache", "import", str(missing)], store_env())
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autoconfig-cache: error: "), result.stderr


# -- logs -------------------------------------------------------------------------------------


@pytest.fixture
def plain_log() -> Iterator[io.StringIO]:
    """The service's plain log set-up, writing to a buffer; the logging state restored after."""
    with captured_service_log("INFO") as buffer:
        yield buffer


def test_a_newline_in_a_logged_env_key_cannot_forge_a_log_line(plain_log: io.StringIO) -> None:
    forged = "production\n2026-01-01 00:00:00,000 ERROR autoconfig_cache: forged"
    logging.getLogger("autoconfig_cache.test").warning("environment %s updated", forged)
    lines = plain_log.getvalue().splitlines()
    assert len(lines) == 1
    assert "production\\n2026-01-01" in lines[0]


def test_a_traceback_keeps_its_own_lines(plain_log: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("autoconfig_cache.test").exception("handler %s raised", "a\rb")
    text = plain_log.getvalue()
    assert "handler a\\rb raised" in text
    assert "Traceback (most recent call last)" in text.splitlines()[1]


def test_escape_control_writes_every_line_breaking_character_as_an_escape() -> None:
    assert escape_control("a\nb\rc\x1b[31md\x85e\u2028f\tg") == (
        "a\\nb\\rc\\x1b[31md\\x85e\\u2028f\tg"
    )
