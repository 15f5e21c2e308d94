"""An incremental parser for the WHATWG ``text/event-stream`` format (server-sent events).

Bytes go in as they arrive from the network, in chunks of any size; complete events come out.
It follows the interpretation rules of the HTML standard (section "Parsing an event stream"):

* lines end with CRLF, LF or CR, and a CRLF may be split across two chunks;
* one leading UTF-8 byte order mark is skipped, even when split across chunks;
* a line starting with ``:`` is a comment (the AutoConfig stream uses them as heartbeats);
* ``field: value`` — one space after the colon is dropped; a line without a colon is a field
  with an empty value; unknown fields are ignored;
* ``data`` lines accumulate, joined by LF; an empty line dispatches the event; an event without
  any ``data`` line is not dispatched; the event type defaults to ``message``;
* ``id`` sets the last event id (ignored if it contains NUL) and persists across events;
* ``retry`` sets the reconnection time when its value is all ASCII digits, otherwise it is ignored
  (here also when it has more than :data:`MAX_RETRY_DIGITS` digits: no sane delay needs more, and
  converting thousands of digits costs time and can fail);
* an incomplete event at the end of the stream is discarded (the caller simply stops feeding).

Two deliberate departures from a browser, both because the AutoConfig stream carries JSON, where
a corrupt byte means the connection should be restarted rather than papered over:

* bytes that are not valid UTF-8 raise :class:`SSEParseError` instead of becoming U+FFFD;
* a line longer than ``max_line_bytes`` raises :class:`SSEParseError` instead of exhausting memory;
* an event whose ``data`` lines add up to more than ``max_event_bytes`` raises
  :class:`SSEEventTooLargeError` (a :class:`SSEParseError`): without it, an event of many lines
  that never ends would grow until the process is killed.

:class:`SSEParseError` is the only exception :meth:`SSEParser.feed` raises. Events completed
before the bad line of a chunk are not lost: that call returns them, keeps the error in
:attr:`SSEParser.error` and the next call raises it.
"""

from __future__ import annotations

import codecs
import re

import attrs

from ..errors import SSEParseError as SSEParseError  # defined with every other error

_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
#: Large enough for a ``put`` of tens of thousands of environments on one ``data`` line.
DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024
#: The total of one event's ``data`` lines as received (bytes, with their ``data:`` prefix and a
#: line end each), plus the line being read.
#: The same as the line limit, so a single-line ``put`` accepted by it is accepted here; see
#: ``AUTO_CONFIG_CACHE_MAX_EVENT_BYTES`` in the configuration reference for the reasoning.
DEFAULT_MAX_EVENT_BYTES = 256 * 1024 * 1024
#: ``retry:`` values with more digits are ignored (10 digits: over 100 days in milliseconds).
MAX_RETRY_DIGITS = 10


class SSEEventTooLargeError(SSEParseError):
    """One event's ``data`` exceeds ``max_event_bytes``; the connection should be dropped."""


def _utf8(value: str | bytes | bytearray) -> bytes | bytearray:
    return value.encode("utf-8") if isinstance(value, str) else value


@attrs.frozen
class ServerSentEvent:
    """One dispatched event.

    :param type: the ``event`` field, ``message`` when the event had none.
    :param data: the ``data`` lines joined by LF (without the final LF), as text or as its UTF-8
        bytes; held as bytes (:attr:`data_bytes`, a ``bytearray`` for a line that arrived in
        several chunks: the parser's own buffer, not to be changed), which a JSON parser reads
        directly.
    :param last_event_id: the last ``id`` seen on this stream, possibly from an earlier event.
    """

    type: str
    data_bytes: bytes | bytearray = attrs.field(alias="data", converter=_utf8)
    last_event_id: str = ""

    @property
    def data(self) -> str:
        """The ``data`` lines joined by LF, as text (decoded anew on each access)."""
        return self.data_bytes.decode("utf-8")


class SSEParser:
    """Turns chunks of bytes into :class:`ServerSentEvent` objects; one parser per connection.

    ``retry`` (milliseconds, or ``None`` if the server never sent one), ``last_event_id`` and
    ``comment_count`` are updated as the stream is read. ``error`` is the :class:`SSEParseError`
    that ended parsing, once one has: the parser accepts no more input after it.
    """

    def __init__(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self.error: SSEParseError | None = None
        self.retry: int | None = None
        self.last_event_id = ""
        self.comment_count = 0
        # The current, not yet terminated line, grown chunk by chunk as it arrives: a 10 MB line
        # is then copied before its last byte, and its data becomes the event's without another
        # copy (growing a large buffer remaps its pages rather than copying them).
        self._pending = bytearray()
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF completes a CRLF
        self._bom_state: bytes | None = b""  # bytes seen so far while deciding about a BOM
        self._event_type = ""
        self._data: list[bytes | bytearray] = []
        self._event_size = 0  # bytes of the current event's data lines, as received

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse ``chunk`` and return the events it completed (often none, sometimes several).

        If the chunk holds a bad line after complete events, those events are returned and the
        error is kept in :attr:`error`, to be raised by the next call (the caller can also check
        :attr:`error` at once, as the stream client does).

        :raises SSEParseError: invalid UTF-8 in a line, a line longer than ``max_line_bytes``
            (:class:`SSEEventTooLargeError`: data of one event over ``max_event_bytes``), or an
            error kept from an earlier call.
        """
        if self.error is not None:
            raise self.error
        events: list[ServerSentEvent] = []
        try:
            self._feed(chunk, events)
        except SSEParseError as exc:
            self.error = exc
            self._pending = bytearray()
            self._data = []
            if not events:
                raise
        return events

    def _feed(self, chunk: bytes, events: list[ServerSentEvent]) -> None:
        if self._bom_state is not None:
            seen = self._bom_state + chunk
            if len(seen) < len(_BOM) and _BOM.startswith(seen):
                self._bom_state = seen  # could still be a BOM: wait for more bytes
                return
            self._bom_state = None
            chunk = seen[len(_BOM) :] if seen.startswith(_BOM) else seen
        pos = 0
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                pos = 1
        size = len(chunk)
        view = memoryview(chunk)  # slices of it are not copies
        line: bytes | bytearray
        for match in _EOL.finditer(chunk, pos):
            end = match.start()
            if self._pending:
                self._check_size(end - pos)
                self._pending += view[pos:end]
                line, self._pending = self._pending, bytearray()
            else:
                if end - pos > self.max_line_bytes or self._event_size + end - pos > (
                    self.max_event_bytes
                ):
                    self._check_size(end - pos)
                line = chunk[pos:end]
            self._process_line(line, events)
            pos = match.end()
            if pos == size and match.group() == b"\r":
                self._skip_lf = True
        if pos < size:
            self._check_size(size - pos)
            self._pending += view[pos:]

    def _check_size(self, extra: int) -> None:
        line = len(self._pending) + extra
        if line > self.max_line_bytes:
            raise SSEParseError(
                f"event-stream line longer than {self.max_line_bytes} bytes; dropping the connection"
            )
        # The line being read counts towards the event too (whatever its field): the event's
        # data plus the pending line is what this connection holds in memory.
        self._check_event_size(self._event_size + line)

    def _check_event_size(self, size: int) -> None:
        if size > self.max_event_bytes:
            raise SSEEventTooLargeError(
                f"event larger than {self.max_event_bytes} bytes (its data lines together); "
                "dropping the connection"
            )

    def _process_line(self, raw: bytes | bytearray, events: list[ServerSentEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        if raw[:1] == b":":
            self.comment_count += 1
            return
        _check_utf8(raw)
        # Fields are matched as bytes, and a data value is kept as bytes, never decoded to text
        # here: a long line (a bytearray, see _pending) becomes the value itself, in place.
        colon = raw.find(b":")
        if colon < 0:
            name, start = raw, len(raw)
        else:
            name = raw[:colon]
            start = colon + 2 if raw[colon + 1 : colon + 2] == b" " else colon + 1
        if name == b"data":
            # Counted as received (field name and a line end included), as the pending line is.
            self._event_size += len(raw) + 1
            self._check_event_size(self._event_size)
            if isinstance(raw, bytearray):
                del raw[:start]  # in place: the buffer's start moves, nothing is copied
                self._data.append(raw)
            else:
                self._data.append(raw[start:])
        elif name == b"event":
            self._event_type = raw[start:].decode("utf-8")
        elif name == b"id":
            value = raw[start:].decode("utf-8")
            if "\x00" not in value:
                self.last_event_id = value
        elif name == b"retry":
            digits = raw[start:]
            if 0 < len(digits) <= MAX_RETRY_DIGITS and digits.isdigit():  # ASCII digits only
                self.retry = int(digits)
        # Any other field name is ignored, as the standard says.

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        self._event_size = 0
        if not self._data:
            self._event_type = ""
            return
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        self._data = []  # before the event is built: the only copy is then the event's
        events.append(
            ServerSentEvent(
                type=self._event_type or "message", data=data, last_event_id=self.last_event_id
            )
        )
        self._event_type = ""


#: Lines are checked as UTF-8 in slices of this size: a long line is never decoded whole.
_UTF8_SLICE = 1024 * 1024


def _check_utf8(raw: bytes | bytearray) -> None:
    """Raise :class:`SSEParseError` unless ``raw`` is valid UTF-8.

    ASCII (nearly every line of the AutoConfig stream) is checked without a copy; other lines
    are decoded in slices and the text dropped, so the check holds at most a slice's text.
    """
    if raw.isascii():
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    offset = 0
    held = 0  # bytes of a character the previous slice cut, held by the decoder
    try:
        while offset < len(raw):
            held = len(decoder.getstate()[0])
            decoder.decode(view[offset : offset + _UTF8_SLICE], final=False)
            offset += _UTF8_SLICE
        held = len(decoder.getstate()[0])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise SSEParseError(
            f"event-stream line is not valid UTF-8 (byte {min(offset, len(raw)) - held + exc.start} "
            "of the line); dropping the connection"
        ) from None
