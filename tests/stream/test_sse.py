"""The event-stream parser against the WHATWG rules, plus property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoconfig_cache.stream.sse import (
    ServerSentEvent,
    SSEEventTooLargeError,
    SSEParseError,
    SSEParser,
)


def parse(*chunks: bytes) -> list[ServerSentEvent]:
    parser = SSEParser()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def test_event_type_and_data() -> None:
    assert parse(b"event: put\ndata: {}\n\n") == [ServerSentEvent("put", "{}")]


def test_event_type_defaults_to_message() -> None:
    assert parse(b"data: x\n\n") == [ServerSentEvent("message", "x")]


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending_is_accepted(eol: bytes) -> None:
    stream = b"event: patch" + eol + b"data: a" + eol + b"data: b" + eol + eol
    assert parse(stream) == [ServerSentEvent("patch", "a\nb")]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    # If the CR and LF were taken as two line endings, the empty line would dispatch early.
    assert parse(b"data: a\r", b"\ndata: b\r\n\r\n") == [ServerSentEvent("message", "a\nb")]


def test_multi_line_data_is_joined_with_lf() -> None:
    assert parse(b"data: one\ndata: two\ndata: three\n\n")[0].data == "one\ntwo\nthree"


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert parse(b"data:  two spaces\ndata:none\n\n")[0].data == " two spaces\nnone"


def test_line_without_colon_is_a_field_with_empty_value() -> None:
    assert parse(b"data\ndata\n\n") == [ServerSentEvent("message", "\n")]


def test_comments_are_skipped_and_counted() -> None:
    parser = SSEParser()
    assert parser.feed(b":\n: heartbeat\ndata: x\n\n") == [ServerSentEvent("message", "x")]
    assert parser.comment_count == 2


def test_event_without_data_is_not_dispatched() -> None:
    assert parse(b"event: put\n\ndata: x\n\n") == [ServerSentEvent("message", "x")]


def test_unknown_fields_are_ignored() -> None:
    assert parse(b"foo: bar\ndata: x\n\n") == [ServerSentEvent("message", "x")]


def test_id_persists_and_id_with_nul_is_ignored() -> None:
    events = parse(b"id: 7\ndata: a\n\ndata: b\n\nid: 8\x00\ndata: c\n\n")
    assert [e.last_event_id for e in events] == ["7", "7", "7"]


def test_retry_sets_reconnection_time_only_when_all_digits() -> None:
    parser = SSEParser()
    parser.feed(b"retry: 2500\n\n")
    assert parser.retry == 2500
    parser.feed(b"retry: 12x\n\nretry: -1\n\n")
    assert parser.retry == 2500


@pytest.mark.parametrize("digits", [11, 400, 5_000])
def test_retry_with_too_many_digits_is_ignored_without_error(digits: int) -> None:
    # 5,000 digits made int() raise ValueError, 400 an OverflowError in the client's conversion.
    parser = SSEParser()
    events = parser.feed(b"retry: 2500\n\nretry: " + b"9" * digits + b"\ndata: put\n\n")
    assert events == [ServerSentEvent("message", "put")]
    assert parser.retry == 2500


def test_retry_of_ten_digits_is_taken() -> None:
    parser = SSEParser()
    parser.feed(b"retry: 9999999999\n\n")
    assert parser.retry == 9_999_999_999


def test_events_before_a_bad_line_in_the_same_chunk_are_returned() -> None:
    parser = SSEParser()
    events = parser.feed(b"event: put\ndata: good\n\ndata: \xff\n\ndata: lost\n\n")
    assert events == [ServerSentEvent("put", "good")]
    assert isinstance(parser.error, SSEParseError)
    with pytest.raises(SSEParseError):
        parser.feed(b"data: later\n\n")


def test_events_before_an_over_long_line_in_the_same_chunk_are_returned() -> None:
    parser = SSEParser(max_line_bytes=20)
    events = parser.feed(b"data: a\n\ndata: " + b"x" * 30 + b"\n\n")
    assert events == [ServerSentEvent("message", "a")]
    assert isinstance(parser.error, SSEParseError)


def test_an_event_of_many_lines_over_the_event_limit_raises() -> None:
    parser = SSEParser(max_event_bytes=100)
    # "data: " + 90 bytes + a line end: 97 bytes, within the limit.
    assert parser.feed(b"data: " + b"x" * 90 + b"\n\n") == [ServerSentEvent("message", "x" * 90)]
    with pytest.raises(SSEEventTooLargeError):
        for _ in range(20):  # no line is long, but the event never ends
            parser.feed(b"data: 0123456789\n")


def test_an_event_limit_counts_the_pending_line_too() -> None:
    parser = SSEParser(max_event_bytes=100)
    parser.feed(b"data: " + b"x" * 60 + b"\n")
    with pytest.raises(SSEEventTooLargeError):
        parser.feed(b"data: " + b"y" * 60)  # no line end yet


def test_the_event_limit_resets_with_each_event() -> None:
    parser = SSEParser(max_event_bytes=100)
    for _ in range(10):
        assert len(parser.feed(b"data: " + b"x" * 40 + b"\ndata: " + b"y" * 40 + b"\n\n")) == 1


def test_leading_bom_is_skipped_even_when_split() -> None:
    assert parse(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == [ServerSentEvent("message", "x")]


def test_bom_is_skipped_only_at_the_start() -> None:
    # A BOM later on is part of a field name ("\ufeffdata"), hence an unknown field.
    assert parse(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [ServerSentEvent("message", "a")]


def test_incomplete_event_at_end_of_stream_is_not_dispatched() -> None:
    assert parse(b"data: a\n\ndata: b\n") == [ServerSentEvent("message", "a")]


def test_invalid_utf8_raises_parse_error() -> None:
    with pytest.raises(SSEParseError):
        parse(b"data: \xff\xfe\n\n")


def test_line_over_the_limit_raises_parse_error() -> None:
    parser = SSEParser(max_line_bytes=10)
    parser.feed(b"data: 1234")
    with pytest.raises(SSEParseError):
        parser.feed(b"56789")


def test_large_data_line_in_many_chunks() -> None:
    payload = "x" * 200_000
    raw = f"event: put\ndata: {payload}\n\n".encode()
    chunks = [raw[i : i + 1000] for i in range(0, len(raw), 1000)]
    assert parse(*chunks) == [ServerSentEvent("put", payload)]


# ---- properties ---------------------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]),
    max_size=30,
)
_event = st.tuples(
    st.sampled_from(["", "put", "patch", "delete", "reconnect"]),
    st.lists(_text, min_size=1, max_size=4),
    st.one_of(st.none(), _text),  # a comment before the event
)


@st.composite
def _stream_and_events(draw: st.DrawFn) -> tuple[bytes, list[ServerSentEvent]]:
    events = draw(st.lists(_event, max_size=8))
    bom = draw(st.booleans())
    out: list[str] = []
    expected: list[ServerSentEvent] = []
    for event_type, data_lines, comment in events:
        eol = draw(st.sampled_from(["\n", "\r", "\r\n"]))
        if comment is not None:
            out.append(":" + comment + eol)
        if event_type:
            out.append("event: " + event_type + eol)
        for line in data_lines:
            out.append("data: " + line + eol)
        out.append(eol)
        expected.append(ServerSentEvent(event_type or "message", "\n".join(data_lines)))
    raw = ("\ufeff" if bom else "") + "".join(out)
    return raw.encode("utf-8"), expected


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts})
    pieces: list[bytes] = []
    start = 0
    for point in [*points, len(raw)]:
        pieces.append(raw[start:point])
        start = point
    return pieces


@settings(max_examples=300, deadline=None)
@given(_stream_and_events(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_any_chunking_yields_the_same_events(
    stream: tuple[bytes, list[ServerSentEvent]], cuts: list[int]
) -> None:
    raw, expected = stream
    assert parse(raw) == expected
    assert parse(*_split(raw, cuts)) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_arbitrary_bytes_raise_nothing_but_parse_error(chunks: list[bytes]) -> None:
    parser = SSEParser(max_line_bytes=100, max_event_bytes=200)
    try:
        for chunk in chunks:
            for event in parser.feed(chunk):
                assert isinstance(event.data, str)
    except SSEParseError:
        pass
