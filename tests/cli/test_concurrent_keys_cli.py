"""Concurrent keys through the real CLI: ``cache inspect`` and ``cache export`` never show a value
of ``sdkKeys``/``mobileKeys`` in clear (unless ``--include-secrets``), the arrays are exported as
stored, and a cached environment with a malformed credential set is reported, not loaded."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache import AutoConfigCache, Environment, Snapshot
from autoconfig_cache.secrets import mask
from tests.cli.conftest import load, run_cli, seed
from tests.items import concurrent_env_json, credential_values, env_json
from tests.secret_values import known_secret

KEY = known_secret("key-current-0001")


def seeded(tmp_path: Path) -> dict[str, Any]:
    data = {
        "environments": {"c1": concurrent_env_json("c1", 3), "l1": env_json("l1", 2)},
        "filters": {},
    }
    data["environments"]["l1"]["sdkKey"]["expiring"] = {
        "value": "sdk-expiring-0123456789abcdef",
        "timestamp": 1_717_200_000_000,
    }
    seed(f"sqlite://{tmp_path / 'cache.db'}", data, encryption_key=KEY)
    return data


def secrets_of(data: dict[str, Any]) -> list[str]:
    return [value for env in data["environments"].values() for value in credential_values(env)]


def assert_no_secret(data: dict[str, Any], *texts: str) -> None:
    for value in secrets_of(data):
        for text in texts:
            assert value not in text


def test_inspect_masks_every_concurrent_key(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    data = seeded(tmp_path)
    table = run_cli(["cache", "inspect"], store_env())
    as_json = run_cli(["cache", "inspect", "--json"], store_env())
    assert table.returncode == 0 and as_json.returncode == 0, table.stderr + as_json.stderr
    assert_no_secret(data, table.stdout, table.stderr, as_json.stdout, as_json.stderr)
    rows = {row["id"]: row for row in json.loads(as_json.stdout)["records"]}
    c1 = data["environments"]["c1"]
    assert rows["c1"]["sdkKeys"] == [
        {**entry, "value": mask(entry["value"])} for entry in c1["sdkKeys"]
    ]
    assert rows["c1"]["mobileKeys"] == [
        {**entry, "value": mask(entry["value"])} for entry in c1["mobileKeys"]
    ]
    # An item without arrays shows the set synthesised from sdkKey (+ expiring) and mobKey.
    l1 = data["environments"]["l1"]
    assert rows["l1"]["sdkKeys"] == [
        {"key": "", "value": mask(l1["sdkKey"]["value"]), "hasViews": False},
        {
            "key": "",
            "value": mask("sdk-expiring-0123456789abcdef"),
            "expiry": 1_717_200_000_000,
            "hasViews": False,
        },
    ]
    assert rows["l1"]["mobileKeys"] == [{"key": "", "value": mask(l1["mobKey"]), "hasViews": False}]


def test_export_masks_every_concurrent_key_and_keeps_the_shape(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    data = seeded(tmp_path)
    result = run_cli(["cache", "export"], store_env())
    assert result.returncode == 0, result.stderr
    assert_no_secret(data, result.stdout, result.stderr)
    exported = json.loads(result.stdout)["environments"]
    for field in ("sdkKeys", "mobileKeys"):
        assert exported["c1"][field] == [
            {**entry, "value": mask(entry["value"])} for entry in data["environments"]["c1"][field]
        ]
    # Nothing synthesised into an item that had no arrays.
    assert "sdkKeys" not in exported["l1"] and "mobileKeys" not in exported["l1"]


# Prints every key in clear on purpose: that is what --include-secrets is for.
@pytest.mark.prints_secrets
def test_export_with_secrets_writes_the_arrays_as_stored(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    data = seeded(tmp_path)
    result = run_cli(["cache", "export", "--include-secrets"], store_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == data
    assert_no_secret(data, result.stderr)


def test_a_cached_environment_with_a_malformed_set_is_reported_without_its_keys(
    tmp_path: Path, store_env: Callable[..., dict[str, str]]
) -> None:
    bad = concurrent_env_json("bad", 1)
    bad["sdkKeys"][1]["value"] = ""
    good = concurrent_env_json("good", 1)

    async def write() -> None:
        async with AutoConfigCache.open(
            f"sqlite://{tmp_path / 'cache.db'}", cache_key="test", encryption_key=KEY
        ) as cache:
            # As an earlier writer that did not check would have stored it.
            await cache.set_all(
                Snapshot(
                    {
                        "bad": Environment("bad", 1, bad),
                        "good": Environment.from_json(good, expected_id="good"),
                    }
                )
            )

    asyncio.run(write())
    data = {"environments": {"bad": bad, "good": good}}
    verify = run_cli(["cache", "verify", "--json"], store_env())
    assert verify.returncode == 1
    (problem,) = json.loads(verify.stdout)["problems"]
    assert problem["field"] == "env:bad" and problem["reason"] == "malformed"
    assert "sdkKeys[1]" in problem["message"]
    export = run_cli(["cache", "export"], store_env())
    assert export.returncode == 0, export.stderr
    assert set(json.loads(export.stdout)["environments"]) == {"good"}
    assert "env:bad" in export.stderr
    inspect = run_cli(["cache", "inspect"], store_env())
    assert "malformed" in inspect.stdout
    assert_no_secret(
        data, verify.stdout, verify.stderr, export.stdout, export.stderr, inspect.stdout
    )


def _mask_sdk_keys_entry(data: dict[str, Any]) -> None:
    entry = data["environments"]["c1"]["sdkKeys"][1]  # not the anchor: sdkKey stays in clear
    entry["value"] = mask(entry["value"])


def _mask_mobile_keys_entry(data: dict[str, Any]) -> None:
    entry = data["environments"]["c1"]["mobileKeys"][1]  # not the anchor: mobKey stays in clear
    entry["value"] = mask(entry["value"])


def _mask_view_scoped_entry(data: dict[str, Any]) -> None:
    entry = data["environments"]["c1"]["sdkKeys"][2]
    entry["value"] = mask(entry["value"])


def _mask_expiring_key(data: dict[str, Any]) -> None:
    expiring = data["environments"]["l1"]["sdkKey"]["expiring"]
    expiring["value"] = mask(expiring["value"])


def _mask_expiring_key_as_a_v8_relay_names_it(data: dict[str, Any]) -> None:
    sdk = data["environments"]["l1"]["sdkKey"]
    expiring = sdk.pop("expiring")
    sdk["Expiring"] = {**expiring, "value": mask(expiring["value"])}


@pytest.mark.parametrize(
    "masking",
    [
        _mask_sdk_keys_entry,
        _mask_mobile_keys_entry,
        _mask_view_scoped_entry,
        _mask_expiring_key,
        _mask_expiring_key_as_a_v8_relay_names_it,
    ],
    ids=lambda f: f.__name__.removeprefix("_mask_"),
)
def test_import_refuses_a_masked_concurrent_or_expiring_key_and_writes_nothing(
    tmp_path: Path, store_env: Callable[..., dict[str, str]], masking: Callable[..., None]
) -> None:
    data = seeded(tmp_path)
    file = tmp_path / "export.json"
    # The same file with every key in clear imports: what is refused below is the mask.
    file.write_text(json.dumps(data))
    clear = run_cli(["cache", "import", str(file)], store_env("control.db"))
    assert clear.returncode == 0, clear.stderr
    masked = copy.deepcopy(data)
    masking(masked)
    file.write_text(json.dumps(masked))
    result = run_cli(["cache", "import", str(file)], store_env("empty.db"))
    assert result.returncode == 1
    assert "masked keys" in result.stderr and "--include-secrets" in result.stderr
    assert "Nothing was written" in result.stderr
    assert_no_secret(data, result.stdout, result.stderr)
    assert len(load(f"sqlite://{tmp_path / 'empty.db'}", encryption_key=KEY).snapshot) == 0
