"""The incremental upstream SSE parser: fields, line ends, comments, and lines cut anywhere across reads."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import pytest

from lean_chat.providers.sse_parser import LineTooLong, SSEEvent, SSEParser

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


def parse_in_pieces(pieces: Sequence[bytes]) -> list[SSEEvent]:
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


def _takes_whole_event_as_is(parser: SSEParser) -> bool:
    """Whether a read of one whole `data:` event, fed next, would parse to exactly that event."""
    probe = copy.deepcopy(parser)
    try:
        return probe.feed(b"data: probe\n\n") == [SSEEvent("message", b"probe")]
    except LineTooLong:
        return False


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_idle_says_whether_a_whole_event_read_parses_as_is(line_end: bytes) -> None:
    # OpenAI's reader takes such a read without calling `feed` when `idle` is set: it must never be set wrongly.
    body = STREAM.replace(b"\n", line_end)
    for cut in range(1, len(body)):
        parser = SSEParser()
        for piece in (body[:cut], body[cut:]):
            parser.feed(piece)
            assert parser.idle == _takes_whole_event_as_is(parser), cut
        parser.flush()
        assert parser.idle == _takes_whole_event_as_is(parser), cut


def test_idle_is_cleared_by_an_over_long_line_and_an_unfinished_event() -> None:
    parser = SSEParser(max_line_bytes=100)
    assert parser.idle
    parser.feed(b"event: x\n")
    assert not parser.idle
    parser.feed(b"\n")
    assert parser.idle
    parser.feed(b"data: first\n\ndata: " + b"x" * 200 + b"\n\n")
    assert not parser.idle


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


class _CountedRead(bytes):
    """A network read that counts how often it is concatenated onto the parser's rest with `+`."""

    concatenations = 0

    def __radd__(self, other: bytes) -> bytes:
        _CountedRead.concatenations += 1
        return bytes(other) + bytes(self)


def test_a_long_line_in_many_reads_is_not_recopied_with_each_read() -> None:
    line = b"data: " + b"x" * 200_000 + b"\n\n"
    reads = [_CountedRead(line[i : i + 1000]) for i in range(0, len(line), 1000)]
    _CountedRead.concatenations = 0
    assert parse_in_pieces(reads) == [SSEEvent("message", b"x" * 200_000)]
    # Concatenating the rest with every read copies the line again each time: quadratic in its length.
    assert _CountedRead.concatenations == 0


@pytest.mark.parametrize("read_size", [1, 7, 64, 4096], ids=lambda n: f"reads-of-{n}")
def test_a_line_cut_anywhere_parses_the_same_with_a_bound(read_size: int) -> None:
    body = b"event: e\r\ndata: " + b"y" * 900 + b"\r\n\r\ndata: z\n\n"
    pieces = [body[i : i + read_size] for i in range(0, len(body), read_size)]
    parser = SSEParser(max_line_bytes=1000)
    events = [event for piece in pieces for event in parser.feed(piece)] + parser.flush()
    assert events == [SSEEvent("e", b"y" * 900), SSEEvent("message", b"z")]


@pytest.mark.parametrize("read_size", [1, 100, 5000, 100_000], ids=lambda n: f"reads-of-{n}")
def test_a_line_over_the_bound_raises(read_size: int) -> None:
    body = b"data: " + b"x" * 3000 + b"\n\n"
    parser = SSEParser(max_line_bytes=1000)
    with pytest.raises(LineTooLong):
        for i in range(0, len(body), read_size):
            parser.feed(body[i : i + read_size])


def test_an_unterminated_line_over_the_bound_raises_before_its_end() -> None:
    parser = SSEParser(max_line_bytes=1000)
    parser.feed(b"data: " + b"x" * 900)
    with pytest.raises(LineTooLong):
        parser.feed(b"x" * 200)


def test_many_data_lines_over_the_bound_raise() -> None:
    parser = SSEParser(max_line_bytes=1000)
    with pytest.raises(LineTooLong):
        parser.feed(b"data: " + b"x" * 400 + b"\n" + b"data: " + b"x" * 400 + b"\n" + b"data:" + b"x" * 400 + b"\n")


def test_events_before_an_over_long_line_come_out_and_the_next_call_raises() -> None:
    parser = SSEParser(max_line_bytes=1000)
    assert parser.feed(b"data: first\n\ndata: " + b"x" * 2000 + b"\n\n") == [SSEEvent("message", b"first")]
    with pytest.raises(LineTooLong):
        parser.feed(b"data: more\n\n")
    with pytest.raises(LineTooLong):
        parser.flush()
