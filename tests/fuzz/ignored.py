"""Segments that must change nothing and keep the connection up.

Unknown event types, events without ``data`` (never dispatched), comments, ``id:``, ``retry:``
(any value: zero, negative, thousands of digits) and unknown fields, ``put``/``patch``/``delete``
at paths the stream does not use, and patches of hostile items (refused on their own).
"""

from __future__ import annotations

from hypothesis import strategies as st

from .events import event_segment, id_for, kinds, line_text, path_of
from .items import hostile_item
from .jsonvalues import json_values, shown
from .wire import Segment

#: ``retry:`` values: zero, negative, huge, hundreds and thousands of digits, not numbers.
retry_values = st.one_of(
    st.sampled_from(["0", "-5", "1", "999", "1000", "30000", "86400000", "9" * 400, "9" * 5000]),
    st.sampled_from(["", " 5", "5s", "1e3", "\u0663", "0x10"]),
    st.integers(0, 10**12).map(str),
)
#: Field names the event-stream format gives a meaning to.
KNOWN_FIELDS = ("data", "event", "id", "retry")
EVENT_TYPES = ("put", "patch", "delete", "reconnect")


@st.composite
def hostile_patch_segment(draw: st.DrawFn) -> Segment:
    """A ``patch`` of an invalid item: refused, nothing else happens."""
    kind = draw(kinds)
    item, what = draw(hostile_item(kind, draw(id_for(kind)), credentials=False))
    body = {"path": path_of(kind, item.item_id), "data": item.raw}
    label = f"patch {kind.field_prefix}:{shown(item.item_id)} ({what})"
    return draw(event_segment("patch", body, label=label))


@st.composite
def unknown_event_segment(draw: st.DrawFn) -> Segment:
    """An event of a type the stream does not use (case and spaces matter), any data."""
    name = draw(
        st.sampled_from(["", "PUT", "Patch", "message", " put", "put ", "ping"]) | line_text
    )
    if name in EVENT_TYPES:
        name = "x" + name
    data = draw(st.lists(line_text, min_size=1, max_size=3))
    return draw(event_segment(name, "\n".join(data), label=f"unknown event {shown(name)}"))


@st.composite
def field_segment(draw: st.DrawFn) -> Segment:
    """A line outside any event: a comment, ``id:``, ``retry:``, an unknown field, a blank line,
    or an event type with no ``data`` (an event without data is not dispatched)."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return Segment((b":" + draw(line_text).encode(),), label="comment")
    if choice == 1:
        value = draw(line_text | st.just("a\x00b"))
        return Segment((b"id: " + value.encode(),), label="id")
    if choice == 2:
        value = draw(retry_values)
        return Segment((b"retry: " + value.encode(),), label=f"retry: {shown(value, 12)}")
    if choice == 3:
        name = draw(line_text.filter(lambda n: ":" not in n and n not in KNOWN_FIELDS))
        line = name.encode()
        if draw(st.booleans()):
            line += b": " + draw(line_text).encode()
        return Segment((line,), label=f"field {shown(name)}")
    if choice == 4:
        return Segment((b"",), label="blank line")
    name = draw(st.sampled_from([*EVENT_TYPES, "x"]))
    return Segment((f"event: {name}".encode(), b""), label=f"{name} without data")


@st.composite
def unused_path_segment(draw: st.DrawFn) -> Segment:
    """A ``put`` at a path other than ``/``, a ``patch``/``delete`` at a path that names no item,
    or a ``patch`` whose data is not an object: ignored."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        path = draw(st.sampled_from(["/x", "", "/environments", "/filters/a"]) | json_values)
        if path == "/":
            path = "/x"
        body = {"path": path, "data": draw(json_values)}
        return draw(event_segment("put", body, label=f"put at path {shown(path)}"))
    if choice == 1:
        event_type = draw(st.sampled_from(["patch", "delete"]))
        path = draw(
            st.sampled_from(["/flags/e1", "/environments/", "/environments/a/b", "environments/e1"])
            | json_values.filter(lambda p: not isinstance(p, str))
        )
        body = {"path": path, "data": draw(json_values), "version": draw(json_values)}
        return draw(event_segment(event_type, body, label=f"{event_type} at path {shown(path)}"))
    kind = draw(kinds)
    data = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    body = {"path": path_of(kind, draw(id_for(kind))), "data": data}
    return draw(event_segment("patch", body, label=f"patch with data {shown(data)}"))


#: Any segment that must change nothing.
ignored_segment = st.one_of(
    hostile_patch_segment(), unknown_event_segment(), field_segment(), unused_path_segment()
)
