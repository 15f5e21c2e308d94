"""Building blocks of generated segments: event lines, paths, ids, and the event size limit."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from autoconfig_cache.records import ItemKind

from .items import ENV_IDS, FILTER_IDS
from .jsonvalues import encode
from .model import Effect
from .wire import Segment

#: The event size limit the harness configures (the smallest the configuration accepts).
MAX_EVENT_BYTES = 64 * 1024

PATH_PREFIX = {ItemKind.ENVIRONMENT: "/environments/", ItemKind.FILTER: "/filters/"}
kinds = st.sampled_from([ItemKind.ENVIRONMENT, ItemKind.FILTER])
#: Text that fits on one line (no CR or LF), any other code point.
line_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=16
)


def id_for(kind: ItemKind) -> st.SearchStrategy[str]:
    """An id from the kind's small pool, so that events meet on the same items."""
    return st.sampled_from(ENV_IDS if kind is ItemKind.ENVIRONMENT else FILTER_IDS)


def path_of(kind: ItemKind, item_id: str) -> str:
    """The stream path of an item."""
    return PATH_PREFIX[kind] + item_id


@st.composite
def event_segment(
    draw: st.DrawFn,
    /,
    event_type: str,
    body: Any,
    *,
    label: str,
    effect: Effect | None = None,
    ends_connection: bool = False,
) -> Segment:
    """An event whose ``data`` is ``body`` as JSON text (a ``str`` body is sent as it is), the
    text ASCII-escaped or raw UTF-8, on one line or spread over several ``data:`` lines."""
    if isinstance(body, str):
        text = body
    else:
        ascii_only = draw(st.booleans())
        text = encode(body, ascii_only=ascii_only, indent=draw(st.sampled_from([None, None, 1])))
    return Segment(
        lines=event_lines(draw, event_type, text),
        effect=effect,
        ends_connection=ends_connection,
        label=label,
    )


def event_lines(draw: st.DrawFn, event_type: str | None, text: str) -> tuple[bytes, ...]:
    """``event:`` (unless ``None``), one ``data:`` line per line of ``text``, the blank line.
    The space after each colon is optional on the wire."""
    lines = []
    if event_type is not None:
        # Without the space, a name starting with one would lose it: " put" would be a put.
        spaced = event_type.startswith(" ") or draw(st.booleans())
        lines.append((b"event: " if spaced else b"event:") + event_type.encode())
    for line in text.split("\n"):
        lines.append(draw(st.sampled_from([b"data: ", b"data:"])) + line.encode())
    lines.append(b"")
    return tuple(lines)
