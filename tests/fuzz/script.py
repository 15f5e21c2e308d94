"""A whole hostile stream: connections of segments, on the wire in generated chunks."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
from hypothesis import strategies as st

from .changes import delete_segment, patch_segment, put_segment, uncertain_patch_segment
from .endings import last_segment
from .events import MAX_EVENT_BYTES
from .ignored import ignored_segment
from .model import ExpectedState, PutEffect
from .wire import LINE_ENDINGS, Connection, Segment, interesting_split_points, join_lines, split

#: HTTP failures a stream server may answer with: transient ones (normal schedule) and ones
#: unlikely to correct themselves (401/403/404: the extended schedule).
ERROR_STATUSES = (400, 401, 403, 404, 408, 429, 500, 503)


@attrs.frozen(repr=False)
class Script:
    """What the server sends, connection by connection; after the last one it sends only the
    sentinel (see ``server.py``)."""

    connections: tuple[Connection, ...]

    def expected(self) -> ExpectedState:
        """The state the contract promises once every connection has been served."""
        state = ExpectedState()
        for connection in self.connections:
            state.apply_all(connection.effects())
        return state

    @property
    def delivers_a_put(self) -> bool:
        """Some connection delivers a ``put`` (after which the manager must be ready)."""
        return any(
            isinstance(effect, PutEffect) for c in self.connections for effect in c.effects()
        )

    @property
    def has_unexpected_status(self) -> bool:
        """Some connection is refused with a status that engages the extended schedule."""
        return any(c.status in (401, 403, 404) for c in self.connections)

    def describe(self) -> str:
        """The script, one connection per line (for failure reports)."""
        return "\n".join(f"  #{n}: {c.describe()}" for n, c in enumerate(self.connections, 1))

    def __repr__(self) -> str:
        return f"<Script\n{self.describe()}\n>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # What Hypothesis prints for a failing example (it pretty-prints attrs classes field by
        # field otherwise): the description, not 50 kB of bytes.
        printer.text(repr(self))


def middle_segment(counter: itertools.count[int]) -> st.SearchStrategy[Segment]:
    """A segment after which the connection goes on."""
    return st.one_of(
        put_segment(counter),
        patch_segment(),
        delete_segment(),
        uncertain_patch_segment(counter),
        ignored_segment,
    )


@st.composite
def connections(draw: st.DrawFn, counter: itertools.count[int]) -> Connection:
    """One connection: an HTTP failure, or a stream of segments cut into chunks anywhere."""
    if draw(st.integers(0, 5)) == 0:
        return Connection(status=draw(st.sampled_from(ERROR_STATUSES)))
    segments = draw(st.lists(middle_segment(counter), max_size=6))
    if draw(st.booleans()):
        segments.append(draw(last_segment))
    lines = [line for segment in segments for line in segment.lines]
    endings = draw(st.lists(st.sampled_from(LINE_ENDINGS), min_size=1, max_size=4))
    data = join_lines(lines, endings, bom=draw(st.integers(0, 4)) == 0)
    for segment in segments:
        if segment.effect is not None or not segment.ends_connection:
            # A segment meant to arrive whole must stay well inside the event limit.
            size = sum(len(line) + 2 for line in segment.lines)
            assert size < MAX_EVENT_BYTES // 2, f"generator bug: {segment.label} is {size} bytes"
    interesting = interesting_split_points(data)
    points = []
    for pick_interesting, position in draw(
        st.lists(st.tuples(st.booleans(), st.integers(0, 2**20)), max_size=24)
    ):
        if pick_interesting and interesting:
            points.append(interesting[position % len(interesting)])
        elif data:
            points.append(position % len(data))
    return Connection(status=200, segments=tuple(segments), chunks=split(data, points))


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    """One to four connections."""
    counter = itertools.count()
    return Script(tuple(draw(st.lists(connections(counter), min_size=1, max_size=4))))
