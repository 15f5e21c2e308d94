"""Field names matched as Go's ``encoding/json`` matches them, case-insensitively, where Relay-
written data needs it: a Relay Proxy v8 writes the expiring SDK key as ``"Expiring"`` (its
``SDKKeyRep.Expiring`` has no JSON tag; ld-relay ``internal/envfactory/env_rep.go``), and reads
back any case. Reading, validation and export masking all follow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autoconfig_cache.models import (
    ConcurrentKey,
    Environment,
    MalformedCredentialsError,
    Snapshot,
    go_field,
)
from tests.items import env_json

OLD = "sdk-old-0123456789abcdef"


def build(data: dict[str, Any]) -> Environment:
    return Environment.from_json(data, expected_id=data["envID"])


@pytest.mark.parametrize("name", ["expiring", "Expiring", "EXPIRING"])
def test_the_expiring_key_is_read_whatever_the_case_of_its_name(name: str) -> None:
    data = env_json("e1")
    data["sdkKey"][name] = {"value": OLD, "timestamp": 1_717_200_000_000}
    env = build(data)
    assert env.expiring_sdk_key is not None
    assert (env.expiring_sdk_key.value, env.expiring_sdk_key.timestamp) == (OLD, 1_717_200_000_000)
    assert env.sdk_keys == (
        ConcurrentKey("", data["sdkKey"]["value"]),
        ConcurrentKey("", OLD, 1_717_200_000_000),
    )


def test_a_v8_relay_empty_expiring_slot_adds_no_key() -> None:
    # v8 marshals the zero value of the untagged struct: always present, empty when unused.
    data = env_json("e1")
    data["sdkKey"]["Expiring"] = {"value": "", "timestamp": 0}
    env = build(data)
    assert env.expiring_sdk_key is None
    assert env.sdk_keys == (ConcurrentKey("", data["sdkKey"]["value"]),)


def test_the_fields_inside_sdk_key_and_expiring_match_any_case_too() -> None:
    data = env_json("e1")
    anchor = data["sdkKey"].pop("value")
    data["sdkKey"] = {"Value": anchor, "Expiring": {"VALUE": OLD, "Timestamp": 5}}
    env = build(data)
    assert env.sdk_key == anchor
    assert env.expiring_sdk_key is not None
    assert (env.expiring_sdk_key.value, env.expiring_sdk_key.timestamp) == (OLD, 5)


def test_when_several_names_match_the_last_one_wins_as_in_go() -> None:
    assert go_field({"expiring": 1, "Expiring": 2}, "expiring") == 2
    assert go_field({"Expiring": 2, "expiring": 1}, "expiring") == 1
    assert go_field({"other": 1}, "expiring") is None


@pytest.mark.parametrize("name", ["expiring", "Expiring"])
def test_a_malformed_expiring_key_is_refused_whatever_the_case_of_its_name(name: str) -> None:
    data = env_json("e1")
    data["sdkKey"][name] = {"value": 42, "timestamp": 1}
    with pytest.raises(MalformedCredentialsError, match=r"sdkKey\.expiring\.value"):
        build(data)


def test_an_expiring_key_an_http_header_cannot_carry_is_refused_under_a_v8_name() -> None:
    data = env_json("e1")
    data["sdkKey"]["Expiring"] = {"value": "bad\nkey-0123456789", "timestamp": 1}
    with pytest.raises(MalformedCredentialsError, match=r"sdkKey\.expiring\.value"):
        build(data)


def test_export_masking_masks_every_case_variant_of_a_credential_field() -> None:
    data = env_json("e1")
    mob = data["mobKey"]
    data["sdkKey"]["Expiring"] = {"value": OLD, "timestamp": 1}
    data["sdkKey"]["expiring"] = {"value": OLD + "-second", "timestamp": 2}
    snapshot, problems = Snapshot.from_put_data({"environments": {"e1": data}})
    assert not problems
    text = json.dumps(snapshot.to_put_data(masked=True))
    for secret in (data["sdkKey"]["value"], mob, OLD, OLD + "-second"):
        assert secret not in text
    masked = snapshot.to_put_data(masked=True)["environments"]["e1"]["sdkKey"]
    assert masked["Expiring"]["value"] == "****" + OLD[-4:]
    assert masked["expiring"]["value"] == "****" + "cond"
