"""The incremental upstream SSE parser: fields, line ends, comments, and lines cut anywhere across reads."""

from __future__ import annotations

import pytest

from lean_chat.providers.sse_parser import SSEEvent, SSEParser

STREAM = (
    b": a comment first\n"
    b"event: message_start\n"
    b'data: {"a":1}\n'
    b"\n"
    b"id: 7\n"
    b"retry: 100\n"
    b"data: line one\n"
    b"data:line two\n"
    b"data\n"
    b"\n"
    b"event: ping\n"
    b"\n"
    b"unknown: field\n"
    b"data: [DONE]\n"
    b"\n"
)
EXPECTED = [
    SSEEvent("message_start", b'{"a":1}'),
    SSEEvent("message", b"line one\nline two\n"),
    SSEEvent("message", b"[DONE]"),
]


def parse_in_pieces(pieces: list[bytes]) -> list[SSEEvent]:
    """Everything the parser produces from these reads, then the end of the stream."""
    parser = SSEParser()
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.flush())
    return events


def test_fields_comments_and_multi_line_data() -> None:
    assert parse_in_pieces([STREAM]) == EXPECTED


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_every_byte_offset_split(line_end: bytes) -> None:
    body = STREAM.replace(b"\n", line_end)
    for cut in range(1, len(body)):
        assert parse_in_pieces([body[:cut], body[cut:]]) == EXPECTED, cut


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_one_byte_per_read(line_end: bytes) -> None:
    body = STREAM.replace(b"\n", line_end)
    assert parse_in_pieces([body[i : i + 1] for i in range(len(body))]) == EXPECTED


def test_every_pair_of_cuts_in_a_crlf_event() -> None:
    body = b'event: x\r\ndata: {"k":"v"}\r\n\r\n'
    for first in range(1, len(body)):
        for second in range(first + 1, len(body)):
            pieces = [body[:first], body[first:second], body[second:]]
            assert parse_in_pieces(pieces) == [SSEEvent("x", b'{"k":"v"}')], (first, second)


def test_events_of_one_read_come_out_together_and_in_order() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4") == [
        SSEEvent("message", b"1"),
        SSEEvent("message", b"2"),
        SSEEvent("message", b"3"),
    ]
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\n") == [SSEEvent("message", b"4")]


def test_event_name_resets_after_each_event() -> None:
    assert parse_in_pieces([b"event: error\ndata: x\n\ndata: y\n\n"]) == [
        SSEEvent("error", b"x"),
        SSEEvent("message", b"y"),
    ]


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert parse_in_pieces([b"data:  two spaces\n\n"]) == [SSEEvent("message", b" two spaces")]


def test_blank_lines_and_comments_alone_make_no_event() -> None:
    assert parse_in_pieces([b"\n\n: ping\n\n: another\r\n\r\n"]) == []


def test_an_unterminated_last_event_is_kept_at_the_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    assert parser.flush() == [SSEEvent("message", b"[DONE]")]
    assert parser.flush() == []


def test_non_utf8_data_passes_through_as_bytes() -> None:
    assert parse_in_pieces([b"data: \xff\xfe\n\n"]) == [SSEEvent("message", b"\xff\xfe")]
