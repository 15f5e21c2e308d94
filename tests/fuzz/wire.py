"""What the scripted server sends: segments of event-stream lines, per connection, in chunks.

A *segment* is one unit of the stream the generator reasons about (an event, a comment, a
``retry:`` line ...) with the effect its delivery has on the expected state. A connection is a
list of segments, at most the last of which ends it early (``ends_connection``: a reconnect
event, malformed data, an oversize event ...); a connection without one is closed by the server
once everything is sent. Everything before the segment that ends a connection is delivered,
which is what the client promises: events completed before a bad line are still dispatched.
"""

from __future__ import annotations

import attrs

from .model import Effect

BOM = b"\xef\xbb\xbf"
LINE_ENDINGS = (b"\n", b"\r\n", b"\r")


@attrs.frozen
class Segment:
    """Lines (without their line ends; ``b""`` is the blank line that ends an event).

    :param effect: what delivering the segment does to the expected state (``None``: nothing).
    :param ends_connection: the client must drop the connection after this segment.
    :param endless: after the lines, the server keeps sending ``data:`` lines of one event that
        never ends, until the client hangs up (or :data:`ENDLESS_CAP` bytes, so that a client
        without an event limit shows as a memory failure, not a hung test).
    :param label: a short description, for reports.
    """

    lines: tuple[bytes, ...]
    effect: Effect | None = None
    ends_connection: bool = False
    endless: bool = False
    label: str = ""


@attrs.frozen
class Connection:
    """One stream connection: an HTTP status (200: a stream) and, for 200, its bytes in chunks."""

    status: int
    segments: tuple[Segment, ...] = ()
    chunks: tuple[bytes, ...] = ()

    @property
    def endless(self) -> bool:
        """The last segment is an event that never ends."""
        return bool(self.segments) and self.segments[-1].endless

    def effects(self) -> list[Effect]:
        """The effects the client sees on this connection, in order."""
        if self.status != 200:
            return []
        return [s.effect for s in self.segments if s.effect is not None]

    def describe(self) -> str:
        """One line per segment, for a failure report."""
        if self.status != 200:
            return f"HTTP {self.status}"
        labels = ", ".join(s.label for s in self.segments) or "(nothing)"
        return f"200: {labels} in {len(self.chunks)} chunk(s)"


def join_lines(lines: list[bytes], endings: list[bytes], *, bom: bool) -> bytes:
    """The bytes of ``lines``, each ended by the next of ``endings`` (cycled).

    A line ended by CR followed by a blank line ended by LF would read as one CRLF, merging the
    two line ends and so the event with the next: that one blank line gets CRLF instead.
    """
    out = [BOM] if bom else []
    previous = b""
    for index, line in enumerate(lines):
        ending = endings[index % len(endings)] if endings else b"\n"
        if previous == b"\r" and not line and ending == b"\n":
            ending = b"\r\n"
        out.append(line)
        out.append(ending)
        previous = ending
    return b"".join(out)


def interesting_split_points(data: bytes) -> list[int]:
    """Offsets where a chunk boundary is hardest on a parser: between CR and LF, inside a
    multi-byte UTF-8 sequence, and inside the BOM."""
    points = []
    for index in range(1, len(data)):
        byte = data[index]
        if (data[index - 1] == 0x0D and byte == 0x0A) or 0x80 <= byte <= 0xBF:
            points.append(index)
    return points


def split(data: bytes, points: list[int]) -> tuple[bytes, ...]:
    """``data`` cut at ``points`` (offsets; out-of-range and duplicate ones ignored)."""
    cuts = sorted({p for p in points if 0 < p < len(data)})
    chunks = []
    start = 0
    for cut in cuts:
        chunks.append(data[start:cut])
        start = cut
    chunks.append(data[start:])
    return tuple(chunk for chunk in chunks if chunk)
