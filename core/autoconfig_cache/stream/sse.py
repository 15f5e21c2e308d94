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
* ``retry`` sets the reconnection time when its value is all ASCII digits, otherwise it is ignored;
* an incomplete event at the end of the stream is discarded (the caller simply stops feeding).

Two deliberate departures from a browser, both because the AutoConfig stream carries JSON, where
a corrupt byte means the connection should be restarted rather than papered over:

* bytes that are not valid UTF-8 raise :class:`SSEParseError` instead of becoming U+FFFD;
* a line longer than ``max_line_bytes`` raises :class:`SSEParseError` instead of exhausting memory.

:class:`SSEParseError` is the only exception :meth:`SSEParser.feed` raises.
"""

from __future__ import annotations

import re

import attrs

from ..errors import SSEParseError as SSEParseError  # defined with every other error

_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
#: Large enough for a ``put`` of tens of thousands of environments on one ``data`` line.
DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024


@attrs.frozen
class ServerSentEvent:
    """One dispatched event.

    :param type: the ``event`` field, ``message`` when the event had none.
    :param data: the ``data`` lines joined by LF (without the final LF).
    :param last_event_id: the last ``id`` seen on this stream, possibly from an earlier event.
    """

    type: str
    data: str
    last_event_id: str = ""


class SSEParser:
    """Turns chunks of bytes into :class:`ServerSentEvent` objects; one parser per connection.

    ``retry`` (milliseconds, or ``None`` if the server never sent one), ``last_event_id`` and
    ``comment_count`` are updated as the stream is read.
    """

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self.retry: int | None = None
        self.last_event_id = ""
        self.comment_count = 0
        # Pieces of the current, not yet terminated line. A list, so that a 10 MB line arriving
        # in 64 KB chunks is joined once rather than copied on every chunk.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF completes a CRLF
        self._bom_state: bytes | None = b""  # bytes seen so far while deciding about a BOM
        self._event_type = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse ``chunk`` and return the events it completed (often none, sometimes several).

        :raises SSEParseError: invalid UTF-8 in a line, or a line longer than ``max_line_bytes``.
        """
        if self._bom_state is not None:
            seen = self._bom_state + chunk
            if len(seen) < len(_BOM) and _BOM.startswith(seen):
                self._bom_state = seen  # could still be a BOM: wait for more bytes
                return []
            self._bom_state = None
            chunk = seen[len(_BOM) :] if seen.startswith(_BOM) else seen
        events: list[ServerSentEvent] = []
        pos = 0
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                pos = 1
        size = len(chunk)
        for match in _EOL.finditer(chunk, pos):
            piece = chunk[pos : match.start()]
            if self._pending:
                self._check_size(len(piece))
                self._pending.append(piece)
                line = b"".join(self._pending)
                self._pending.clear()
                self._pending_size = 0
            else:
                if len(piece) > self.max_line_bytes:
                    self._check_size(len(piece))
                line = piece
            self._process_line(line, events)
            pos = match.end()
            if pos == size and match.group() == b"\r":
                self._skip_lf = True
        if pos < size:
            piece = chunk[pos:]
            self._check_size(len(piece))
            self._pending.append(piece)
            self._pending_size += len(piece)
        return events

    def _check_size(self, extra: int) -> None:
        if self._pending_size + extra > self.max_line_bytes:
            self._pending.clear()
            self._pending_size = 0
            raise SSEParseError(
                f"event-stream line longer than {self.max_line_bytes} bytes; dropping the connection"
            )

    def _process_line(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        if raw[:1] == b":":
            self.comment_count += 1
            return
        # Split on bytes and decode the value straight from a memoryview: a 10 MB data line is
        # then copied once by the decoder, not again by partition() and slicing.
        colon = raw.find(b":")
        if colon < 0:
            name_bytes, start = raw, len(raw)
        else:
            name_bytes = raw[:colon]
            start = colon + 2 if raw[colon + 1 : colon + 2] == b" " else colon + 1
        try:
            name = name_bytes.decode("utf-8")
            value = str(memoryview(raw)[start:], "utf-8")
        except UnicodeDecodeError as exc:
            raise SSEParseError(
                f"event-stream line is not valid UTF-8 (byte {exc.start}); dropping the connection"
            ) from None
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif name == "retry" and value and value.isascii() and value.isdigit():
            self.retry = int(value)
        # Any other field name is ignored, as the standard says.

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        if not self._data:
            self._event_type = ""
            return
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        events.append(
            ServerSentEvent(
                type=self._event_type or "message", data=data, last_event_id=self.last_event_id
            )
        )
        self._data = []
        self._event_type = ""
