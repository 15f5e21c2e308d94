"""Environment's concurrent keys: the ``sdkKeys``/``mobileKeys`` accessors, their synthesis from
``sdkKey``/``mobKey``, the checks a credential set must pass, masking, and the round trip of the
arrays through the cache unchanged."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing, StorageFormat
from autoconfig_cache.errors import MalformedItemError
from autoconfig_cache.models import (
    ConcurrentKey,
    Environment,
    MalformedCredentialsError,
    Snapshot,
    item_from_json,
)
from autoconfig_cache.records import ItemKind
from autoconfig_cache.report import SkipReason
from autoconfig_cache.stores.memory import MemoryStore
from tests.items import concurrent_env_json, credential_values, env_json, filter_json


def build(data: dict[str, Any]) -> Environment:
    return Environment.from_json(data, expected_id=data["envID"])


# ---- the accessors ------------------------------------------------------------------------------


def test_arrays_present_are_read_as_typed_entries() -> None:
    data = concurrent_env_json("e1")
    env = build(data)
    assert env.sdk_keys == (
        ConcurrentKey("default", data["sdkKeys"][0]["value"], None, False),
        ConcurrentKey("rotating", data["sdkKeys"][1]["value"], 1_900_000_000_000, False),
        ConcurrentKey("views-only", data["sdkKeys"][2]["value"], None, True),
    )
    assert env.mobile_keys == (
        ConcurrentKey("default", data["mobKey"], None, False),
        ConcurrentKey("second", data["mobileKeys"][1]["value"], 1_900_000_000_000, False),
    )


def test_without_arrays_the_sets_are_synthesised_from_sdk_key_and_mob_key() -> None:
    data = env_json("e1")
    env = build(data)
    assert env.sdk_keys == (ConcurrentKey("", data["sdkKey"]["value"]),)
    assert env.mobile_keys == (ConcurrentKey("", data["mobKey"]),)


def test_synthesis_adds_the_expiring_key_with_its_timestamp_as_expiry() -> None:
    data = env_json("e1")
    data["sdkKey"]["expiring"] = {"value": "sdk-old-0123456789ab", "timestamp": 1_717_200_000_000}
    env = build(data)
    assert env.sdk_keys == (
        ConcurrentKey("", data["sdkKey"]["value"]),
        ConcurrentKey("", "sdk-old-0123456789ab", 1_717_200_000_000),
    )


def test_an_expiring_key_without_timestamp_expires_at_zero_as_in_relay() -> None:
    data = env_json("e1")
    data["sdkKey"]["expiring"] = {"value": "sdk-old-0123456789ab"}
    assert build(data).sdk_keys[1] == ConcurrentKey("", "sdk-old-0123456789ab", 0)


def test_an_empty_expiring_value_adds_nothing() -> None:
    data = env_json("e1")
    data["sdkKey"]["expiring"] = {"value": "", "timestamp": 5}
    assert len(build(data).sdk_keys) == 1


@pytest.mark.parametrize("mob", [None, ""])
def test_no_mobile_key_means_an_empty_mobile_set(mob: str | None) -> None:
    data = env_json("e1", mobKey=mob)
    env = build(data)
    assert env.mobile_keys == () and env.mob_key == ""


@pytest.mark.parametrize("empty", [[], None])
def test_empty_or_null_arrays_are_synthesised_like_absent_ones(empty: list[Any] | None) -> None:
    data = env_json("e1", sdkKeys=empty, mobileKeys=empty)
    env = build(data)
    assert env.sdk_keys == (ConcurrentKey("", data["sdkKey"]["value"]),)
    assert env.mobile_keys == (ConcurrentKey("", data["mobKey"]),)


def test_synthesis_never_writes_into_the_stored_json() -> None:
    data = env_json("e1", someFutureField={"x": [1]})
    original = copy.deepcopy(data)
    env = build(data)
    env.sdk_keys, env.mobile_keys  # noqa: B018 - the accessors are what is under test
    assert env.raw == original and env.to_json() == original
    assert "sdkKeys" not in env.to_json() and "mobileKeys" not in env.to_json()


def test_entry_json_leaves_out_a_missing_expiry_and_masks_on_request() -> None:
    key = ConcurrentKey("default", "sdk-0123456789abcdef")
    assert key.to_json() == {"key": "default", "value": "sdk-0123456789abcdef", "hasViews": False}
    assert ConcurrentKey("k", "sdk-0123456789abcdef", 7, True).to_json(masked=True) == {
        "key": "k",
        "value": "****cdef",
        "expiry": 7,
        "hasViews": True,
    }


# ---- masking ------------------------------------------------------------------------------------


def test_reprs_mask_every_credential() -> None:
    data = concurrent_env_json("e1")
    env = build(data)
    texts = [repr(env), repr(env.sdk_keys), repr(env.mobile_keys), repr(Snapshot({"e1": env}))]
    for value in credential_values(data):
        for text in texts:
            assert value not in text
    assert "****" + data["sdkKeys"][1]["value"][-4:] in repr(env.sdk_keys)


# ---- what a credential set must be --------------------------------------------------------------


def _with(mutate: Any) -> dict[str, Any]:
    data = concurrent_env_json("e1")
    mutate(data)
    return data


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


MALFORMED = {
    "sdkKeys not an array": _set(("sdkKeys",), {"key": "default"}),
    "mobileKeys not an array": _set(("mobileKeys",), "mob-0123456789"),
    "entry not an object": _set(("sdkKeys", 1), "sdk-0123456789abcdef"),
    "null entry": _set(("mobileKeys", 1), None),
    "value not a string": _set(("sdkKeys", 1, "value"), 12345678901),
    "value missing": lambda d: d["sdkKeys"][1].pop("value"),
    "empty value": _set(("mobileKeys", 1, "value"), ""),
    "value not sendable in a header": _set(("sdkKeys", 1, "value"), "sdk-abc\ndef-0123"),
    "value not ascii": _set(("sdkKeys", 1, "value"), "sdk-ümlaut-0123456"),
    "expiry not an integer": _set(("sdkKeys", 1, "expiry"), 1.5e12),
    "expiry a string": _set(("sdkKeys", 1, "expiry"), "1900000000000"),
    "expiry a boolean": _set(("mobileKeys", 1, "expiry"), True),
    "expiry beyond int64": _set(("sdkKeys", 1, "expiry"), 2**63),
    "key not a string": _set(("sdkKeys", 0, "key"), 7),
    "hasViews not a boolean": _set(("sdkKeys", 0, "hasViews"), "yes"),
    "anchor not in sdkKeys": lambda d: d["sdkKeys"].pop(0),
    "mobKey not in mobileKeys": lambda d: d["mobileKeys"].pop(0),
    "mobileKeys without mobKey": _set(("mobKey",), ""),
    "empty anchor": _set(("sdkKey", "value"), ""),
    "mobKey not a string": _set(("mobKey",), ["mob-0123456789"]),
    "expiring not an object": _set(("sdkKey", "expiring"), "sdk-0123456789abcdef"),
    "expiring value not a string": _set(("sdkKey", "expiring"), {"value": 5, "timestamp": 1}),
    "expiring timestamp negative": _set(
        ("sdkKey", "expiring"), {"value": "sdk-old-0123456789", "timestamp": -1}
    ),
    "expiring timestamp not an integer": _set(
        ("sdkKey", "expiring"), {"value": "sdk-old-0123456789", "timestamp": "soon"}
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_credential_set_is_refused_without_naming_a_value(case: str) -> None:
    data = _with(MALFORMED[case])
    with pytest.raises(MalformedCredentialsError) as caught:
        build(data)
    message = str(caught.value)
    assert "environment 'e1'" in message
    for value in credential_values(data):
        assert value not in message


@pytest.mark.parametrize(
    "legacy",
    [
        {"sdkKey": {"value": ""}},
        {"sdkKey": {"value": "sdk-tab\there-0123"}},
        {"mobKey": "mob-line\nbreak-0123"},
        {"sdkKey": {"value": "sdk-0123456789abcdef", "expiring": {"value": "sdk-\x00-0123456"}}},
    ],
)
def test_the_synthesised_set_of_a_legacy_item_is_checked_too(legacy: dict[str, Any]) -> None:
    # Relay v9 checks the set ToParams synthesises, so an unusable sdkKey/mobKey is refused.
    with pytest.raises(MalformedCredentialsError):
        build(env_json("e1", **legacy))


@pytest.mark.parametrize(
    "accepted",
    {
        "view-scoped keys": _set(("sdkKeys", 0, "hasViews"), True),
        "no key identifier": lambda d: d["sdkKeys"][1].pop("key"),
        "null expiry and hasViews": _set(
            ("sdkKeys", 1), {"value": "sdk-x-0123456789", "expiry": None, "hasViews": None}
        ),
        "negative expiry": _set(("sdkKeys", 1, "expiry"), -5),
        "an expiry on the anchor": _set(("sdkKeys", 0, "expiry"), 1),
        "duplicate values": lambda d: d["sdkKeys"].append(dict(d["sdkKeys"][0])),
        "DEL is allowed as in Relay": _set(("sdkKeys", 1, "value"), "sdk-0123456789\x7f"),
        "null expiring": _set(("sdkKey", "expiring"), None),
    }.items(),
    ids=lambda case: case[0] if isinstance(case, tuple) else str(case),
)
def test_shapes_relay_accepts_are_accepted(accepted: tuple[str, Any]) -> None:
    build(_with(accepted[1]))


def test_other_malformed_fields_are_not_credential_problems() -> None:
    data = concurrent_env_json("e1")
    del data["envKey"]
    with pytest.raises(MalformedItemError) as caught:
        build(data)
    assert not isinstance(caught.value, MalformedCredentialsError)


def test_a_put_leaves_out_only_the_environment_with_a_malformed_set() -> None:
    good, bad = concurrent_env_json("good"), concurrent_env_json("bad")
    bad["sdkKeys"] = "not an array"
    snapshot, problems = Snapshot.from_put_data(
        {"environments": {"good": good, "bad": bad}, "filters": {"f": filter_json()}}
    )
    assert set(snapshot.environments) == {"good"} and set(snapshot.filters) == {"f"}
    assert len(problems) == 1 and isinstance(problems[0], MalformedCredentialsError)


def test_item_from_json_refuses_a_malformed_set() -> None:
    data = _with(MALFORMED["anchor not in sdkKeys"])
    with pytest.raises(MalformedCredentialsError):
        item_from_json(ItemKind.ENVIRONMENT, "e1", data)


# ---- through the cache --------------------------------------------------------------------------


def _cache(store: MemoryStore, fmt: StorageFormat) -> AutoConfigCache:
    return AutoConfigCache(
        store, cache_key="models", keys=KeyRing.from_strings("models-test-key"), format=fmt
    )


@pytest.mark.parametrize("fmt", list(StorageFormat))
async def test_the_arrays_round_trip_through_the_cache_unchanged(fmt: StorageFormat) -> None:
    store = MemoryStore(None, "models")
    concurrent, legacy = concurrent_env_json("c1", 3), env_json("l1", 4)
    concurrent["someFutureField"] = {"nested": [1, 2]}
    concurrent["sdkKeys"][0]["someFutureEntryField"] = "kept"
    snapshot, problems = Snapshot.from_put_data(
        {"environments": {"c1": copy.deepcopy(concurrent), "l1": copy.deepcopy(legacy)}}
    )
    assert not problems
    await _cache(store, fmt).set_all(snapshot)
    result = await _cache(store, fmt).get_all()
    assert not result.report.skipped
    loaded = result.snapshot.environments
    # Byte for byte what was received: the arrays as sent, none synthesised for the legacy item.
    assert json.dumps(loaded["c1"].to_json(), sort_keys=True) == json.dumps(
        concurrent, sort_keys=True
    )
    assert loaded["l1"].to_json() == legacy and "sdkKeys" not in loaded["l1"].to_json()
    assert loaded["c1"].sdk_keys == build(concurrent).sdk_keys


async def test_a_cached_item_with_a_malformed_set_is_skipped_with_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore(None, "models")
    bad = concurrent_env_json("bad")
    bad["mobileKeys"][1]["expiry"] = "tomorrow"
    good = concurrent_env_json("good")
    # Written as received by an earlier writer that did not check (built without from_json).
    snapshot = Snapshot({"bad": Environment("bad", 1, bad), "good": build(good)})
    with caplog.at_level(logging.DEBUG, logger="autoconfig_cache"):
        await _cache(store, StorageFormat.V2).set_all(snapshot)
        result = await _cache(store, StorageFormat.V2).get_all()
    assert set(result.snapshot.environments) == {"good"}
    (skipped,) = result.report.skipped
    assert skipped.field == "env:bad" and skipped.reason is SkipReason.MALFORMED
    assert "mobileKeys[1]" in skipped.message and "expiry" in skipped.message
    for value in credential_values(bad):
        assert value not in skipped.message and value not in caplog.text
