"""Segments after which the connection ends, changing nothing.

``reconnect``; malformed JSON and bodies of the wrong shape; nesting past 1,024 levels and
5,000-digit numbers (the whole event is refused); invalid UTF-8; an event over the size limit; an
event that never ends; an event whose blank line never comes before the server closes; a patch
with a credential set the Relay Proxy refuses (the stream restarts for a fresh ``put``); a delete
with an invalid version or id (refused; it ends the connection here because the project may
refuse it either way, skipping it or restarting).
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from autoconfig_cache.records import ItemKind

from .changes import patch_segment, put_segment
from .events import MAX_EVENT_BYTES, event_segment, id_for, kinds, line_text, path_of
from .items import bad_ids, bad_versions, good_versions, hostile_item
from .jsonvalues import deep_nesting, json_values, many_digits, shown
from .wire import Segment

#: Byte sequences that are not UTF-8: stray continuation bytes, overlong and surrogate encodings,
#: code points past U+10FFFF, sequences cut short.
INVALID_UTF8 = (
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xbf",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
)
invalid_utf8 = st.sampled_from([*INVALID_UTF8, b"\xe2\x82", b"\xc3"])
#: ``data`` that is not a JSON object: not JSON at all, cut short, or another JSON type.
NOT_AN_OBJECT = ("", "{", "nope", "[1,", '{"path": "/", "data": {', "[]", "5", '"x"', "null")
data_types = st.sampled_from(["put", "patch", "delete"])


@st.composite
def reconnect_segment(draw: st.DrawFn) -> Segment:
    """A ``reconnect`` event, with any data."""
    return draw(
        event_segment("reconnect", draw(line_text), label="reconnect", ends_connection=True)
    )


@st.composite
def malformed_segment(draw: st.DrawFn) -> Segment:
    """A ``put``/``patch``/``delete`` whose data is not a JSON object, or a ``put`` whose
    ``data`` or ``environments`` is of the wrong type."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        event_type, text = draw(data_types), draw(st.sampled_from(NOT_AN_OBJECT))
        label = f"{event_type} data {shown(text)}"
        return draw(event_segment(event_type, text, label=label, ends_connection=True))
    if choice == 1:
        data = draw(json_values.filter(lambda v: not isinstance(v, dict)))
        body = {"path": "/", "data": data}
        return draw(
            event_segment("put", body, label=f"put data {shown(data)}", ends_connection=True)
        )
    # Only truthy values: an empty list or 0 reads as "no environments", which is not malformed.
    bad = draw(json_values.filter(lambda v: bool(v) and not isinstance(v, dict)))
    body = {"path": "/", "data": {"environments": bad, "filters": {}}}
    label = f"put environments {shown(bad)}"
    return draw(event_segment("put", body, label=label, ends_connection=True))


@st.composite
def beyond_parser_limits_segment(draw: st.DrawFn) -> Segment:
    """A ``put``/``patch``/``delete`` holding nesting past 1,024 levels or a number of more than
    4,300 digits (the standard library's limit): the whole event is refused."""
    if draw(st.booleans()):
        depth = draw(st.integers(1025, 5000))
        value, what = deep_nesting(depth), f"nesting {depth} deep"
    else:
        digits = draw(st.integers(4301, 6000))
        value, what = many_digits(digits), f"a {digits}-digit number"
    event_type = draw(data_types)
    body = _body_holding(event_type, value)
    return draw(
        event_segment(event_type, body, label=f"{event_type} with {what}", ends_connection=True)
    )


def _body_holding(event_type: str, value: Any) -> dict[str, Any]:
    """An otherwise good event body with ``value`` in it."""
    if event_type == "delete":
        return {"path": "/environments/e0", "version": value}
    env: dict[str, Any] = {"envID": "e0", "envKey": "k", "projKey": "p", "version": 1}
    env.update(sdkKey={"value": "sdk-" + "0" * 16}, _xhere=value)
    if event_type == "patch":
        return {"path": "/environments/e0", "data": env}
    return {"path": "/", "data": {"environments": {"e0": env}, "filters": {}}}


@st.composite
def invalid_utf8_segment(draw: st.DrawFn) -> Segment:
    """An event with bytes that are not UTF-8 in one of its lines."""
    bad = draw(invalid_utf8)
    name = draw(st.sampled_from([b"data: ", b"event: ", b"id: ", b"x: "]))
    line = name + draw(line_text).encode() + bad + b"!" + draw(line_text).encode()
    return Segment(
        (b"event: patch", line, b""), ends_connection=True, label=f"invalid UTF-8 {bad!r}"
    )


@st.composite
def oversize_segment(draw: st.DrawFn) -> Segment:
    """An event over the limit: one long ``data`` line or many short ones."""
    size = draw(st.integers(MAX_EVENT_BYTES + 1, 3 * MAX_EVENT_BYTES))
    if draw(st.booleans()):
        data: tuple[bytes, ...] = (b"data: " + b"x" * size,)
    else:
        data = (b"data: " + b"y" * 1000,) * (size // 1000 + 1)
    label = f"event of {size} bytes"
    return Segment((b"event: put", *data, b""), ends_connection=True, label=label)


endless_segment = st.just(
    Segment((b"event: put", b"data: {"), endless=True, ends_connection=True, label="endless event")
)


@st.composite
def unterminated_segment(draw: st.DrawFn) -> Segment:
    """A good event without its blank line, then the server closes: discarded."""
    event = draw(put_segment(itertools.count(10_000)) | patch_segment())
    return Segment(event.lines[:-1], ends_connection=True, label=f"never ended: {event.label}")


@st.composite
def refused_credentials_segment(draw: st.DrawFn) -> Segment:
    """A ``patch`` of an environment whose credential set the Relay Proxy refuses."""
    kind = ItemKind.ENVIRONMENT
    item, what = draw(hostile_item(kind, draw(id_for(kind)), credentials=True))
    body = {"path": path_of(kind, item.item_id), "data": item.raw}
    return draw(event_segment("patch", body, label=f"patch ({what})", ends_connection=True))


@st.composite
def invalid_delete_segment(draw: st.DrawFn) -> Segment:
    """A ``delete`` with an invalid version, or with a valid version of an invalid id."""
    kind = draw(kinds)
    if draw(st.booleans()):
        item_id, version = draw(id_for(kind)), draw(bad_versions)
    else:
        item_id, version = draw(bad_ids), draw(good_versions)
    body = {"path": path_of(kind, item_id), "version": version}
    label = f"delete {shown(item_id)} v{shown(version)}"
    return draw(event_segment("delete", body, label=label, ends_connection=True))


#: Any segment after which the connection ends.
last_segment = st.one_of(
    reconnect_segment(),
    malformed_segment(),
    beyond_parser_limits_segment(),
    invalid_utf8_segment(),
    oversize_segment(),
    endless_segment,
    unterminated_segment(),
    refused_credentials_segment(),
    invalid_delete_segment(),
)
