"""Environments and filters: good ones, hostile ones, and ones whose fate is left open.

* **Good** items are valid by any reasonable definition of one: ids from a small pool (so that
  events meet on the same items), versions in ``0 .. 2**31-1``, the required fields of the
  right type, credentials an HTTP header can carry, strings that are Unicode text. Their
  loosely typed and unknown fields hold values of every JSON type, including numbers no double
  or 64-bit integer holds. They must reach the store exactly as sent.
* **Hostile** items are invalid by the issue's definition (ids, versions, strings) or by the
  model's own (required fields, credentials). They must be refused, never stored, and a refused
  item keeps what was known of its id.
* **Uncertain** items are valid JSON the stream accepts but that the contract does not settle:
  nesting close to the parser's limit of 1,024 levels. The manager may store or refuse one, but
  it must never stop the good items from being written; each has an id of its own.

Every credential has the shape ``<prefix>-<16 to 24 hex digits>`` (see :data:`SECRET_PATTERN`),
so a log line holding one in clear can be found without a list of values.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

from autoconfig_cache.jsoncodec import MAX_DEPTH
from autoconfig_cache.records import ItemKind

from .jsonvalues import deep_nesting, json_values, lone_surrogates, non_strings, shown
from .model import ItemSpec

#: Any credential the generator makes, in clear (a masked one keeps only its last 4 characters).
SECRET_PATTERN = re.compile(r"(?:sdk|mob|rel|enc)-[0-9a-f]{16}")

ENV_IDS = ("e0", "e1", "e2")
FILTER_IDS = ("f0", "f1")
#: Good versions: what every store and the tombstone encoding hold, whatever range is chosen.
good_versions = st.one_of(st.integers(0, 8), st.integers(0, 2**31 - 1))
#: Versions no valid item has: negative, past 2**53 (inexact in a double; 2**62 overflows the
#: tombstone encoding in a 64-bit integer), not integers.
bad_versions = st.sampled_from(
    [-1, -(2**63), 2**62, 2**63, 2**70, 1.0, 1.5, 1e308, "7", True, None]
)
#: Ids no store should be given: empty, over DynamoDB's 1,024-byte key, control characters, a
#: line separator (a forged log line), a lone surrogate.
bad_ids = st.sampled_from(
    ["", "x" * 1100, "é" * 600, "a\nb", "a\rb", "a\x00b", "a\x1b[31mb", "a\x7fb", "a\u2028b"]
) | lone_surrogates.map(lambda s: f"x{s}x")


def secret(prefix: str) -> st.SearchStrategy[str]:
    """A credential: ``<prefix>-`` and 16 to 24 hex digits."""
    return st.text("0123456789abcdef", min_size=16, max_size=24).map(lambda h: f"{prefix}-{h}")


def extra_fields() -> st.SearchStrategy[dict[str, Any]]:
    """Unknown fields (a newer schema's), of any JSON type, kept as received."""
    return st.dictionaries(st.text(max_size=8).map(lambda k: f"_x{k}"), json_values, max_size=3)


@st.composite
def good_environment(draw: st.DrawFn, env_id: str) -> ItemSpec:
    """A valid environment with id ``env_id``."""
    sdk = draw(secret("sdk"))
    raw: dict[str, Any] = {
        "envID": env_id,
        "envKey": draw(st.text(max_size=10)),
        "projKey": draw(st.text(max_size=10)),
        "sdkKey": {"value": sdk},
        "version": draw(good_versions),
    }
    # Loosely typed fields the project reads with a fallback: any JSON value is kept.
    for name in ("envName", "projName", "defaultTtl", "secureMode"):
        if draw(st.booleans()):
            raw[name] = draw(json_values)
    mob = draw(st.none() | st.just("") | secret("mob"))
    if mob is not None or draw(st.booleans()):
        raw["mobKey"] = mob
    if draw(st.booleans()):
        raw["sdkKey"]["expiring"] = {
            "value": draw(secret("sdk")),
            "timestamp": draw(st.integers(0, 2**64 - 1)),
        }
    if draw(st.booleans()):
        raw["sdkKeys"] = [
            {"key": "default", "value": sdk, "hasViews": False},
            {
                "key": "next",
                "value": draw(secret("sdk")),
                "expiry": draw(st.integers(-(2**63), 2**63 - 1)),
            },
            {"key": "views", "value": draw(secret("sdk")), "hasViews": True},
        ]
        if mob:
            raw["mobileKeys"] = [{"key": "default", "value": mob}]
    raw.update(draw(extra_fields()))
    return ItemSpec(ItemKind.ENVIRONMENT, env_id, raw["version"], raw)


@st.composite
def good_filter(draw: st.DrawFn, filter_id: str) -> ItemSpec:
    """A valid payload filter with id ``filter_id``."""
    raw: dict[str, Any] = {
        "projKey": draw(st.text(max_size=10)),
        "key": draw(st.text(max_size=10)),
        "version": draw(good_versions),
    }
    raw.update(draw(extra_fields()))
    return ItemSpec(ItemKind.FILTER, filter_id, raw["version"], raw)


def good_item(kind: ItemKind, item_id: str) -> st.SearchStrategy[ItemSpec]:
    """A valid item of ``kind``."""
    if kind is ItemKind.ENVIRONMENT:
        return good_environment(item_id)
    return good_filter(item_id)


@st.composite
def uncertain_item(draw: st.DrawFn, kind: ItemKind, item_id: str, *, event_depth: int) -> ItemSpec:
    """A valid item with a field nested from 200 levels deep to as deep as the event that
    carries it allows: the event (``event_depth`` levels around the item, the item itself one)
    stays within the parser's 1,024. The manager may refuse it; see the module docstring."""
    item = draw(good_item(kind, item_id))
    deepest = MAX_DEPTH - event_depth - 1
    depth = draw(st.just(deepest) | st.integers(200, deepest))
    raw = {**item.raw, "_deep": deep_nesting(depth)}
    return ItemSpec(kind, item_id, item.version, raw)


def _with_surrogate(draw: st.DrawFn, raw: dict[str, Any], places: list[str]) -> dict[str, Any]:
    """``raw`` with a lone surrogate in one string: a value, an unknown field's name, or deep in
    an unknown field."""
    surrogate = f"x{draw(lone_surrogates)}x"
    place = draw(st.sampled_from([*places, "unknown field name", "nested value"]))
    if place == "unknown field name":
        return {**raw, f"_x{surrogate}": 1}
    if place == "nested value":
        return {**raw, "_xnested": {"a": [1, {"b": surrogate}]}}
    return {**raw, place: surrogate}


@st.composite
def hostile_item(
    draw: st.DrawFn, kind: ItemKind, item_id: str, *, credentials: bool
) -> tuple[ItemSpec, str]:
    """An invalid item under ``item_id`` (unless the id itself is what is wrong) and what is wrong
    with it. ``credentials``: also credential sets the Relay Proxy refuses, which refuse a whole
    ``patch`` (the stream restarts) but only the item in a ``put``."""
    good = draw(good_item(kind, item_id))
    raw = dict(good.raw)
    required = ["envKey", "projKey"] if kind is ItemKind.ENVIRONMENT else ["key", "projKey"]
    problems = ["version", "required field", "surrogate", "bad id"]
    if kind is ItemKind.ENVIRONMENT:
        problems += ["sdkKey", "id mismatch"]
        if credentials:
            problems.append("credentials")
    problem = draw(st.sampled_from(problems))
    if problem == "version":
        raw["version"] = draw(bad_versions)
        what = f"version {shown(raw['version'])}"
    elif problem == "required field":
        name = draw(st.sampled_from(required))
        if draw(st.booleans()):
            raw[name] = draw(non_strings)
        else:
            del raw[name]
        what = f"{name} {shown(raw.get(name, '(absent)'))}"
    elif problem == "surrogate":
        places = ["envKey", "envName", "projName"] if kind is ItemKind.ENVIRONMENT else ["key"]
        raw = _with_surrogate(draw, raw, places)
        what = "a lone surrogate"
    elif problem == "bad id":
        item_id = draw(bad_ids)
        if kind is ItemKind.ENVIRONMENT:
            raw["envID"] = item_id
        what = f"id {shown(item_id)}"
    elif problem == "sdkKey":
        raw["sdkKey"] = draw(
            non_strings.filter(lambda v: not isinstance(v, dict)) | st.just({"value": 5})
        )
        what = f"sdkKey {shown(raw['sdkKey'])}"
    elif problem == "id mismatch":
        raw["envID"] = item_id + "-other"
        what = "envID differs from its key"
    else:
        raw = _bad_credentials(draw, raw)
        what = "credentials the Relay Proxy refuses"
    version = raw.get("version")
    return ItemSpec(kind, item_id, version if type(version) is int else -1, raw), what


def _bad_credentials(draw: st.DrawFn, raw: dict[str, Any]) -> dict[str, Any]:
    sdk = raw["sdkKey"]["value"]
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return {**raw, "mobKey": draw(non_strings.filter(lambda v: v is not None))}
    if choice == 1:
        return {**raw, "sdkKey": {"value": sdk + "\x01"}}
    if choice == 2:
        return {**raw, "sdkKey": {"value": sdk + "é"}}
    if choice == 3:
        return {**raw, "sdkKeys": [{"key": "other", "value": draw(secret("sdk"))}]}
    return {
        **raw,
        "sdkKey": {"value": sdk, "expiring": {"value": draw(secret("sdk")), "timestamp": -1}},
    }
