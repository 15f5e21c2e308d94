"""The ``cache`` tools, ``plugins`` and error handling, through the real CLI in a subprocess."""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

from autoconfig_cache.demo.data import environment_json, sample_put_data
from tests.cli.conftest import KNOWN_SDK_KEY, load, run_cli, seed
from tests.secret_values import known_secret

KEY = known_secret("key-current-0001")


def data_with_known_key() -> dict[str, object]:
    data = sample_put_data(environments=4, filters=2)
    env_id = next(iter(data["environments"]))
    data["environments"][env_id] = environment_json(env_id, sdk_key=KNOWN_SDK_KEY)
    return data


def seeded(tmp_path: Path, name: str = "cache.db", key: str = KEY) -> str:
    url = f"sqlite://{tmp_path / name}"
    seed(url, data_with_known_key(), encryption_key=key)
    return url


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert KNOWN_SDK_KEY not in text


# -- plugins and usage ----------------------------------------------------------------------


def test_plugins_json_lists_memory_and_sqlite() -> None:
    result = run_cli(["plugins", "--json"])
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    by_name = {plugin["name"]: plugin for plugin in listing["plugins"]}
    assert "memory" in by_name["memory"]["schemes"]
    assert "sqlite" in by_name["sqlite"]["schemes"]
    assert "autoconfig_cache_register_stores" in by_name["sqlite"]["hooks"]
    assert by_name["sqlite"]["stores"] == [
        {
            "scheme": "sqlite",
            "description": "embedded SQLite file: sqlite:///absolute/path.db or sqlite:relative.db",
        }
    ]


def test_plugins_table_names_the_builtin_stores_with_their_descriptions() -> None:
    result = run_cli(["plugins"], env={"COLUMNS": "250"})
    assert result.returncode == 0
    assert "memory" in result.stdout
    assert "sqlite: embedded SQLite file" in result.stdout
    # Store registration shows as the schemes, not as a hook name repeated on every row.
    assert "autoconfig_cache_register_stores" not in result.stdout


def test_help_lists_the_commands() -> None:
    result = run_cli(["--help"])
    assert result.returncode == 0
    for command in ("run", "demo", "cache", "plugins"):
        assert command in result.stdout


def test_unknown_flag_is_a_usage_error_with_exit_2() -> None:
    result = run_cli(["cache", "inspect", "--bogus"])
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_unknown_command_is_a_usage_error_with_exit_2() -> None:
    result = run_cli(["frobnicate"])
    assert result.returncode == 2


# -- errors are one line, exit 1, no traceback, no secret --------------------------------------


def assert_one_line_error(result: object, *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("autoconfig-cache: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert_no_secret(stderr, result.stdout)  # type: ignore[attr-defined]


def test_no_store_configured_names_the_store_setting() -> None:
    result = run_cli(["cache", "inspect"], {"AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY})
    assert_one_line_error(result, "AUTO_CONFIG_CACHE_STORE")


def test_cache_key_without_store_error_through_the_cli() -> None:
    result = run_cli(["cache", "inspect"], {"AUTO_CONFIG_CACHE_KEY": "x"})
    assert_one_line_error(result, "AUTO_CONFIG_CACHE_KEY", "no store is configured")


def test_dynamodb_without_table_error_through_the_cli() -> None:
    result = run_cli(["cache", "inspect"], {"USE_DYNAMODB": "1", "AUTO_CONFIG_CACHE_KEY": "x"})
    assert_one_line_error(result, "DYNAMODB_TABLE")


def test_two_stores_error_through_the_cli(tmp_path: Path) -> None:
    result = run_cli(
        ["cache", "inspect"],
        {
            "USE_REDIS": "true",
            "AUTO_CONFIG_CACHE_STORE": f"sqlite://{tmp_path}/c.db",
            "AUTO_CONFIG_CACHE_KEY": "x",
        },
    )
    assert_one_line_error(result, "two stores", "USE_REDIS")


def test_unknown_scheme_error_through_the_cli() -> None:
    result = run_cli(
        ["cache", "inspect"],
        {"AUTO_CONFIG_CACHE_STORE": "mongo://h/db", "AUTO_CONFIG_CACHE_KEY": "x"},
    )
    assert_one_line_error(result, "unknown store scheme 'mongo'", "sqlite")


def test_whitespace_key_error_through_the_cli() -> None:
    result = run_cli(["cache", "inspect"], {"AUTO_CONFIG_KEY": "   "})
    assert_one_line_error(result, "AUTO_CONFIG_KEY", "whitespace")


def test_bad_port_error_through_the_cli() -> None:
    assert_one_line_error(run_cli(["cache", "inspect"], {"PORT": "http"}), "PORT")


def test_bad_store_url_masks_the_password() -> None:
    result = run_cli(
        ["cache", "inspect"],
        {
            "AUTO_CONFIG_CACHE_STORE": f"sqlite://u:{KNOWN_SDK_KEY}@[::1",
            "AUTO_CONFIG_CACHE_KEY": "x",
        },
    )
    assert_one_line_error(result, "not a valid URL")


def test_invalid_toml_error_through_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(f'autoconfig_key = "{KNOWN_SDK_KEY}\n')
    result = run_cli(["--config", str(config), "cache", "inspect"])
    assert_one_line_error(result, "not valid TOML")


def test_missing_config_file_error_through_the_cli(tmp_path: Path) -> None:
    result = run_cli(["cache", "inspect", "--config", str(tmp_path / "nope.toml")])
    assert_one_line_error(result, "does not exist")


def test_unreadable_config_file_error_through_the_cli(tmp_path: Path) -> None:
    result = run_cli(["cache", "inspect", "--config", str(tmp_path)])
    assert_one_line_error(result, "cannot be read")


def test_config_file_selects_the_store(tmp_path: Path) -> None:
    url = seeded(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(f'[cache]\nstore = "{url}"\nkey = "test"\nencryption_key = "{KEY}"\n')
    result = run_cli(["--config", str(config), "cache", "inspect", "--json"])
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["records"]) == 6


def test_store_failure_is_a_one_line_error(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "file"
    not_sqlite.write_text("not an SQLite database, and long enough to have a header" * 20)
    result = run_cli(
        ["cache", "inspect"],
        {
            "AUTO_CONFIG_CACHE_STORE": f"sqlite://{not_sqlite}",
            "AUTO_CONFIG_CACHE_KEY": "x",
            "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
        },
    )
    assert_one_line_error(result)


# -- inspect ----------------------------------------------------------------------------------


def test_inspect_shows_every_item_with_keys_masked(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path)
    result = run_cli(["cache", "inspect", "--wide"], store_env())  # with the sdk key column
    assert result.returncode == 0, result.stderr
    assert "6 cached item(s)" in result.stdout
    assert "****" + KNOWN_SDK_KEY[-4:] in result.stdout
    assert "(current)" in result.stdout
    assert_no_secret(result.stdout, result.stderr)


def test_inspect_json_has_kind_versions_key_id_and_masked_keys(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path)
    result = run_cli(["cache", "inspect", "--json"], store_env())
    records = json.loads(result.stdout)["records"]
    kinds = sorted(record["kind"] for record in records)
    assert kinds == ["environment"] * 4 + ["filter"] * 2
    env = next(r for r in records if r["kind"] == "environment")
    assert env["version"] == 1 and env["modelVersion"] is not None and env["keyId"]
    assert env["sdkKey"].startswith("****") and env["cachedAt"]
    assert_no_secret(result.stdout)


# -- verify -----------------------------------------------------------------------------------


def test_verify_passes_on_an_intact_cache(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path)
    result = run_cli(["cache", "verify"], store_env())
    assert result.returncode == 0, result.stderr
    assert "OK: 6 of 6" in result.stdout


def tamper(db: Path, field: str) -> None:
    with sqlite3.connect(db) as connection:
        (blob,) = connection.execute(
            "SELECT blob FROM autoconfig_cache WHERE field = ?", (field,)
        ).fetchone()
        changed = bytearray(blob)
        changed[-5] ^= 0x01
        connection.execute(
            "UPDATE autoconfig_cache SET blob = ? WHERE field = ?", (bytes(changed), field)
        )


def test_verify_catches_a_tampered_item(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path)
    tamper(tmp_path / "cache.db", "filter:filter0001")
    result = run_cli(["cache", "verify", "--json"], store_env())
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [p["field"] for p in report["problems"]] == ["filter:filter0001"]
    assert report["problems"][0]["reason"] == "undecryptable"


def test_verify_reports_items_under_the_wrong_key(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path, key="some-other-key-9999")
    result = run_cli(["cache", "verify"], store_env())
    assert result.returncode == 1
    assert "FAILED: 0 of 6" in result.stdout
    assert "undecryptable" in result.stdout


# -- export and import ------------------------------------------------------------------------


def test_export_masks_sdk_and_mobile_keys_by_default(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path)
    result = run_cli(["cache", "export"], store_env())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"environments", "filters"}
    assert len(data["environments"]) == 4 and len(data["filters"]) == 2
    for env in data["environments"].values():
        assert env["sdkKey"]["value"].startswith("****")
        assert env["mobKey"].startswith("****")
    assert_no_secret(result.stdout, result.stderr)


def test_export_to_a_file_is_private_and_round_trips_into_another_store(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path)
    target = tmp_path / "export.json"
    result = run_cli(["cache", "export", "-o", str(target), "--include-secrets"], store_env())
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert_no_secret(result.stdout, result.stderr)
    assert KNOWN_SDK_KEY in target.read_text()

    other = store_env("other.db", key="another-key-5678")
    imported = run_cli(["cache", "import", str(target), "--json"], other)
    assert imported.returncode == 0, imported.stderr
    assert len(json.loads(imported.stdout)["written"]) == 6

    reloaded = load(f"sqlite://{tmp_path / 'other.db'}", encryption_key="another-key-5678")
    original = load(f"sqlite://{tmp_path / 'cache.db'}", encryption_key=KEY)
    assert reloaded.snapshot.to_put_data() == original.snapshot.to_put_data()


def test_import_is_version_guarded(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    url = f"sqlite://{tmp_path / 'cache.db'}"
    env = environment_json("e1", version=5)
    seed(url, {"environments": {"e1": env}, "filters": {}}, encryption_key=KEY)
    older = tmp_path / "older.json"
    older.write_text(
        json.dumps({"environments": {"e1": environment_json("e1", version=3)}, "filters": {}})
    )
    result = run_cli(["cache", "import", str(older), "--json"], store_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"written": [], "skipped": ["env:e1"]}
    assert load(url, encryption_key=KEY).snapshot.environments["e1"].version == 5


def test_import_refuses_a_masked_export_and_writes_nothing(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    seeded(tmp_path)
    masked = tmp_path / "masked.json"
    masked.write_text(run_cli(["cache", "export"], store_env()).stdout)
    result = run_cli(["cache", "import", str(masked)], store_env("empty.db"))
    assert_one_line_error(result, "--include-secrets", "Nothing was written")
    assert len(load(f"sqlite://{tmp_path / 'empty.db'}", encryption_key=KEY).snapshot) == 0


def test_import_of_a_file_in_another_shape_writes_nothing(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"flags": {}, "segments": {}}))
    result = run_cli(["cache", "import", str(wrong)], store_env())
    assert_one_line_error(result, "is not put data", "nothing was written")
    assert len(load(f"sqlite://{tmp_path / 'cache.db'}", encryption_key=KEY).snapshot) == 0


def test_import_with_one_malformed_item_writes_nothing(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "environments": {"e1": environment_json("e1"), "e2": {"envID": "e2"}},
                "filters": {},
            }
        )
    )
    result = run_cli(["cache", "import", str(bad)], store_env())
    assert_one_line_error(result, "1 malformed item", "nothing was written")
    assert len(load(f"sqlite://{tmp_path / 'cache.db'}", encryption_key=KEY).snapshot) == 0


def test_import_of_a_file_that_is_not_json(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("environments: yes")
    assert_one_line_error(run_cli(["cache", "import", str(bad)], store_env()), "is not JSON")


def test_import_of_a_missing_file(tmp_path: Path, store_env: Callable[..., dict[str, str]]) -> None:
    result = run_cli(["cache", "import", str(tmp_path / "none.json")], store_env())
    assert_one_line_error(result, "cannot read")


# -- rotate-key -------------------------------------------------------------------------------


def test_rotate_key_then_only_the_new_key_reads_everything(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    old, new = "key-old-aaaa-1111", "key-new-bbbb-2222"
    url = seeded(tmp_path, key=old)
    env = store_env(key=new, AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS=old)
    result = run_cli(["cache", "rotate-key", "--json"], env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["reencrypted"] == 6 and summary["wereOnPreviousKey"] == 6

    with_new_only = load(url, encryption_key=new)
    assert with_new_only.report.skipped == ()
    assert len(with_new_only.snapshot) == 6
    assert run_cli(["cache", "verify"], store_env(key=new)).returncode == 0
    assert len(load(url, encryption_key=old).report.skipped) == 6


def test_rotate_key_refuses_when_an_item_is_undecryptable_and_changes_nothing(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    url = seeded(tmp_path, key=KEY)
    tamper(tmp_path / "cache.db", "filter:filter0000")
    before = (
        sqlite3.connect(tmp_path / "cache.db")
        .execute("SELECT field, blob FROM autoconfig_cache ORDER BY field")
        .fetchall()
    )
    result = run_cli(
        ["cache", "rotate-key"],
        store_env(key="brand-new-key-0000", AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS=KEY),
    )
    assert_one_line_error(
        result, "filter:filter0000", "nothing was changed", "--drop-undecryptable"
    )
    after = (
        sqlite3.connect(tmp_path / "cache.db")
        .execute("SELECT field, blob FROM autoconfig_cache ORDER BY field")
        .fetchall()
    )
    assert after == before
    assert url


def test_rotate_key_drop_undecryptable_deletes_only_those(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    url = seeded(tmp_path, key=KEY)
    tamper(tmp_path / "cache.db", "filter:filter0000")
    env = store_env(key="brand-new-key-0000", AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS=KEY)
    result = run_cli(["cache", "rotate-key", "--drop-undecryptable", "--json"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dropped"] == ["filter:filter0000"]
    reloaded = load(url, encryption_key="brand-new-key-0000")
    assert reloaded.report.skipped == ()
    assert len(reloaded.snapshot) == 5


# -- clear and create-table -------------------------------------------------------------------


def test_clear_asks_and_a_no_deletes_nothing(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    url = seeded(tmp_path)
    result = run_cli(["cache", "clear"], store_env(), input="no\n")
    assert result.returncode == 1
    question, error = result.stderr.strip().splitlines()
    assert "Type 'yes' to confirm" in question
    assert error.startswith("autoconfig-cache: error: not confirmed; nothing was deleted")
    assert len(load(url, encryption_key=KEY).snapshot) == 6


def test_clear_with_confirmation_deletes_everything(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    url = seeded(tmp_path)
    result = run_cli(["cache", "clear"], store_env(), input="yes\n")
    assert result.returncode == 0, result.stderr
    assert "cleared 6 item(s)" in result.stdout
    assert len(load(url, encryption_key=KEY).snapshot) == 0


def test_clear_yes_skips_the_question(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    url = seeded(tmp_path)
    assert run_cli(["cache", "clear", "--yes"], store_env()).returncode == 0
    assert len(load(url, encryption_key=KEY).snapshot) == 0


def test_create_table_creates_the_sqlite_file_with_mode_0600(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    result = run_cli(["cache", "create-table"], store_env())
    assert result.returncode == 0, result.stderr
    assert "created the storage" in result.stdout
    assert stat.S_IMODE((tmp_path / "cache.db").stat().st_mode) == 0o600


def test_create_table_on_a_store_without_storage_says_there_is_nothing_to_create() -> None:
    env = {
        "AUTO_CONFIG_CACHE_STORE": "memory://",
        "AUTO_CONFIG_CACHE_KEY": "test",
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": KEY,
    }
    result = run_cli(["cache", "create-table"], env)
    assert result.returncode == 0, result.stderr
    assert "the memory store has nothing to create" in result.stdout


# -- tombstones ---------------------------------------------------------------------------------


def delete_through_the_library(url: str, env_id: str, version: int) -> None:
    import asyncio

    from autoconfig_cache import AutoConfigCache, ItemKind

    async def delete() -> None:
        async with AutoConfigCache.open(url, cache_key="test", encryption_key=KEY) as cache:
            assert await cache.delete(ItemKind.ENVIRONMENT, env_id, version)

    asyncio.run(delete())


def test_inspect_and_verify_show_a_tombstone_as_deleted_not_as_a_problem(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    url = seeded(tmp_path)
    env_id = next(iter(load(url, encryption_key=KEY).snapshot.environments))
    delete_through_the_library(url, env_id, 2)
    records = json.loads(run_cli(["cache", "inspect", "--json"], store_env()).stdout)["records"]
    deleted = [record for record in records if record["deleted"]]
    assert [(r["id"], r["version"], r["problem"]) for r in deleted] == [(env_id, 2, None)]
    assert run_cli(["cache", "verify"], store_env()).returncode == 0
    exported = json.loads(run_cli(["cache", "export"], store_env()).stdout)
    assert env_id not in exported["environments"]


def test_rotate_key_keeps_tombstones(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    url = seeded(tmp_path)
    env_id = next(iter(load(url, encryption_key=KEY).snapshot.environments))
    delete_through_the_library(url, env_id, 2)
    new = "key-new-cccc-3333"
    env = store_env(key=new, AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS=KEY)
    assert run_cli(["cache", "rotate-key"], env).returncode == 0
    reloaded = load(url, encryption_key=new)
    assert reloaded.report.skipped == ()
    assert [(t.item_id, t.version) for t in reloaded.snapshot.tombstones] == [(env_id, 2)]
