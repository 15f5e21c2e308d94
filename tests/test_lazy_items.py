"""Environments held as their JSON text: parsed only as far as validation needs, read on access.

A stream ``put`` and a cache load build each environment from its JSON text (the event's slice,
the envelope's ``data``) without parsing the rest of the item; the SSE parser keeps ``data`` as
bytes and checks UTF-8 without decoding a long line whole.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import msgspec
import orjson
import pytest

from autoconfig_cache import AutoConfigCache, KeyRing, StorageFormat
from autoconfig_cache.codec.envelope import legacy_tombstone
from autoconfig_cache.errors import MalformedCredentialsError
from autoconfig_cache.models import Environment, environment_from_text
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.stream.events import PutMessage, parse_event, parse_put
from autoconfig_cache.stream.sse import ServerSentEvent, SSEParseError, SSEParser
from tests.secret_values import known_secret

from .items import env_json

KEY = known_secret("lazy items key")


def put_event(data: bytes) -> ServerSentEvent:
    return ServerSentEvent("put", data)


def test_a_put_holds_each_environment_as_its_text_from_the_event() -> None:
    # Spacing and an escape orjson would not write: the text must be the event's own slice.
    item = (
        b'{ "envID":"e1", "envKey":"k\\u003c", "projKey":"p", "version":3,'
        b' "sdkKey":{"value":"sdk-1"}, "future":{"big":123456789012345678901234567890}}'
    )
    message = parse_event(put_event(b'{"path":"/","data":{"environments":{"e1":' + item + b"}}}"))
    assert isinstance(message, PutMessage)
    env = message.snapshot.environments["e1"]
    assert env.json_bytes == item
    assert env.raw["future"]["big"] == 123456789012345678901234567890  # exact, unparsed till now
    assert env.env_key == "k<" and env.version == 3 and env.sdk_key == "sdk-1"


def test_the_text_path_refuses_what_the_dict_path_refuses() -> None:
    good = env_json("good")
    bad = {**env_json("bad"), "sdkKey": {"value": "sdk-1", "expiring": {"value": "bad\nkey"}}}
    body = {"path": "/", "data": {"environments": {"good": good, "bad": bad}}}
    message = parse_event(put_event(json.dumps(body).encode()))
    assert isinstance(message, PutMessage)
    assert set(message.snapshot.environments) == {"good"} and message.rejected_items == 1
    with pytest.raises(MalformedCredentialsError):
        Environment.from_json_bytes(json.dumps(bad).encode(), expected_id="bad")
    with pytest.raises(MalformedCredentialsError):
        Environment.from_json(bad)


def test_an_expiring_key_with_a_bad_timestamp_is_refused_from_text() -> None:
    bad = {**env_json("e1"), "sdkKey": {"value": "sdk-1", "expiring": {"timestamp": -1}}}
    with pytest.raises(MalformedCredentialsError, match="timestamp"):
        Environment.from_json_bytes(json.dumps(bad).encode())


def test_an_environment_built_from_text_is_the_one_the_constructor_builds() -> None:
    # The common shape is built through the slots, without attrs' __init__: the object must be
    # the same in every respect, frozen included, and hold the very bytes it was given.
    text = json.dumps(env_json("e1")).encode()
    built = Environment.from_json_bytes(text, expected_id="e1")
    assert type(built) is Environment and built == Environment("e1", 1, text)
    assert built.json_bytes is text and built.env_id == "e1" and built.version == 1
    assert environment_from_text(text, "e1") == built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.version = 2  # type: ignore[misc]
    # Another bytes-like type goes through the constructor, which holds it as bytes.
    from_bytearray = Environment.from_json_bytes(bytearray(text))  # type: ignore[arg-type]
    assert type(from_bytearray.json_bytes) is bytes and from_bytearray == built

    class Named(Environment):
        pass

    assert type(Named.from_json_bytes(text)) is Named


def test_environments_held_as_different_text_are_equal_by_value() -> None:
    data = env_json("e1")
    spaced = Environment.from_json_bytes(json.dumps(data, indent=2).encode())
    compact = Environment.from_json_bytes(json.dumps(data, separators=(",", ":")).encode())
    assert spaced.json_bytes != compact.json_bytes and spaced == compact
    assert spaced != Environment.from_json({**data, "envName": "other"})


def test_a_value_with_nan_survives_being_held_as_text() -> None:
    env = Environment.from_json({**env_json("e1"), "ratio": float("inf")})
    assert env.raw["ratio"] == float("inf")


def test_sse_keeps_data_as_bytes_and_checks_utf8_across_slices() -> None:
    # A character split across the 1 MiB boundary of the UTF-8 check (counted from the start
    # of the line, "data: " included) is valid.
    value = "x" * (1024 * 1024 - 1 - len("data: ")) + "é"
    events = SSEParser().feed(b"data: " + value.encode() + b"\n\n")
    assert events[0].data_bytes == value.encode() and events[0].data == value
    # A bad byte past the first slice is still found.
    with pytest.raises(SSEParseError, match="UTF-8"):
        SSEParser().feed(b"data: " + "é".encode() + b"x" * (2 * 1024 * 1024) + b"\xff\n\n")
    # A sequence cut off at the end of the line is refused too.
    with pytest.raises(SSEParseError, match="UTF-8"):
        SSEParser().feed(b"data: \xc3\n\n")


def test_a_cache_load_keeps_the_envelope_data_as_the_item_text() -> None:
    cache = AutoConfigCache(
        None,
        cache_key="cache-a",
        keys=KeyRing.from_strings(KEY),
        format=StorageFormat.RELAY,
        registry=PluginRegistry(load_entry_points=False),
    )
    # 1.5e-7: the stored text (orjson's "1.5e-7") differs from a re-serialisation by the
    # standard library ("1.5e-07"), so the text held is known to be the envelope's own.
    env = Environment.from_json(env_json("e1", 4, future=[1.5e-7, {"a": None}]))
    decoded = cache.codec.decode(cache.codec.encode(env))
    assert isinstance(decoded.item, Environment)
    assert decoded.item.json_bytes == orjson.dumps(env.raw)
    assert decoded.item == env and decoded.item.raw["future"] == [1.5e-7, {"a": None}]


def test_a_legacy_tombstone_is_recognised_from_text_only_in_its_exact_shape() -> None:
    def raw(value: object) -> msgspec.Raw:
        return msgspec.json.decode(json.dumps({"d": value}).encode(), type=dict[str, msgspec.Raw])[
            "d"
        ]

    assert legacy_tombstone(raw({"deleted": True, "version": 3, "cachedAt": 5})) == (3, 5)
    assert legacy_tombstone(raw({"deleted": True, "version": 3, "cachedAt": 5, "x": 1})) is None
    assert legacy_tombstone(raw({"deleted": True, "version": 3})) is None
    assert legacy_tombstone(raw("deleted")) is None


def _variants() -> dict[str, Any]:
    """Environments in shapes that take every branch of the fast check and of the full one."""
    sdk = {"value": "sdk-anchor"}
    base = env_json("x")
    shapes: dict[str, Any] = {
        "plain": {},
        "expiring": {"sdkKey": {**sdk, "expiring": {"value": "sdk-old", "timestamp": 5}}},
        "expiring-v8": {"sdkKey": {**sdk, "Expiring": {"Value": "sdk-old", "Timestamp": 5}}},
        "expiring-null": {"sdkKey": {**sdk, "expiring": None}},
        "expiring-empty": {"sdkKey": {**sdk, "expiring": {"value": ""}}},
        "expiring-list": {"sdkKey": {**sdk, "expiring": []}},
        "expiring-bad-char": {"sdkKey": {**sdk, "expiring": {"value": "a\x7fb\x80"}}},
        "expiring-int-value": {"sdkKey": {**sdk, "expiring": {"value": 3}}},
        "timestamp-bool": {"sdkKey": {**sdk, "expiring": {"value": "o", "timestamp": True}}},
        "timestamp-huge": {"sdkKey": {**sdk, "expiring": {"value": "o", "timestamp": 2**64}}},
        "sdk-upper": {"sdkKey": {"Value": "sdk-anchor"}},
        "sdk-both-cases": {"sdkKey": {"value": "sdk-a", "VALUE": "sdk-b"}},
        "sdk-empty": {"sdkKey": {"value": ""}},
        "sdk-later-case-empty": {"sdkKey": {"value": "sdk-a", "Value": ""}},
        "expiring-later-case-bad": {
            "sdkKey": {**sdk, "expiring": {"value": "sdk-old", "VALUE": "bad\x01"}}
        },
        "sdk-string": {"sdkKey": "sdk-anchor"},
        "sdk-unknown-field": {"sdkKey": {**sdk, "other": 1}},
        "mob-null": {"mobKey": None},
        "mob-empty": {"mobKey": ""},
        "mob-int": {"mobKey": 7},
        "mob-newline": {"mobKey": "mob\n"},
        "sdkkeys-null": {"sdkKeys": None},
        "sdkkeys-empty": {"sdkKeys": []},
        "sdkkeys": {"sdkKeys": [{"key": "k", "value": base["sdkKey"]["value"]}]},
        "sdkkeys-missing-anchor": {"sdkKeys": [{"key": "k", "value": "sdk-other"}]},
        "mobilekeys-without-mob": {"mobKey": "", "mobileKeys": [{"value": "mob-1"}]},
        "version-bool": {"version": True},
        "version-float": {"version": 1.0},
        "version-negative": {"version": -1},
        "version-huge": {"version": 2**70},
        "envkey-int": {"envKey": 1},
        "projkey-missing": {"projKey": None},
        "id-mismatch": {"envID": "other"},
        "id-unprintable": {"envID": "x\n"},
        "id-long": {"envID": "x" * 300},
        "big-unknown-int": {"future": 2**100},
    }
    variants: dict[str, Any] = {}
    for name, change in shapes.items():
        env = {**base, **change}
        env_id = env["envID"] if name in ("id-unprintable", "id-long") else name
        if name != "id-mismatch":
            env["envID"] = env_id
        variants[env_id] = {k: v for k, v in env.items() if v is not None or k != "projKey"}
    for name, value in {"a-list": [], "a-string": "x", "a-null": None, "a-number": 1}.items():
        variants[name] = value
    return variants


def _outcome(message: object) -> tuple[Any, ...]:
    assert isinstance(message, PutMessage)
    return (
        {env_id: env.raw for env_id, env in message.snapshot.environments.items()},
        {key: sorted(ids) for key, ids in message.skipped_ids.items()},
        message.rejected_items,
    )


def test_the_text_path_decides_every_environment_as_the_dict_path_does() -> None:
    body = {"path": "/", "data": {"environments": _variants(), "filters": None}}
    text = json.dumps(body).encode()
    fast = parse_event(put_event(text))
    general = parse_put(json.loads(text))
    assert _outcome(fast) == _outcome(general)
    accepted = set(_outcome(fast)[0])
    # Both paths accept and refuse something: the comparison is not of two empty results.
    assert {"plain", "expiring", "expiring-v8", "sdkkeys", "big-unknown-int"} <= accepted
    assert not accepted & {
        "mob-int",
        "mob-newline",
        "timestamp-huge",
        "sdk-empty",
        "sdk-later-case-empty",
        "expiring-later-case-bad",
        "a-list",
    }
    assert "sdk-both-cases" in accepted  # Go: the last key that matches wins


def test_an_event_keeps_its_data_when_the_parser_reads_the_next_long_line() -> None:
    # A line that arrives in several chunks becomes the event's data in place (the parser's
    # buffer): the next line must get a buffer of its own.
    parser = SSEParser()
    events = parser.feed(b"data: first ") + parser.feed(b"event data\n\n")
    events += parser.feed(b"data: second ") + parser.feed(b"event\n") + parser.feed(b"\n")
    assert [event.data for event in events] == ["first event data", "second event"]
    events += parser.feed(b"data: x") + parser.feed(b"\n") + parser.feed(b"data: y\n\n")
    assert events[2].data == "x\ny"
