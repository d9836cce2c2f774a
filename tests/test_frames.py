"""SSE frames, byte for byte: the wire that browser clients split on blank lines."""

from __future__ import annotations

import json

import pytest

from lean_chat.frames import (
    PING_FRAME,
    SSE_HEADERS,
    done_frame,
    error_frame,
    token_frame,
    token_frames,
    with_request_id,
)

TOKEN_CASES = [
    ("plain", "Hello", b'{"type":"token","token":"Hello"}'),
    ("space", " ", b'{"type":"token","token":" "}'),
    ("newline", "\n", b'{"type":"token","token":"\\n"}'),
    ("tab", "\t", b'{"type":"token","token":"\\t"}'),
    ("carriage return", "a\r\nb", b'{"type":"token","token":"a\\r\\nb"}'),
    ("quotes", 'say "hi"', b'{"type":"token","token":"say \\"hi\\""}'),
    ("backslash", "C:\\path\\", b'{"type":"token","token":"C:\\\\path\\\\"}'),
    ("unicode", "héllo wörld ✓", '{"type":"token","token":"héllo wörld ✓"}'.encode()),
    ("emoji", "🎉👍🏽", '{"type":"token","token":"🎉👍🏽"}'.encode()),
    ("cjk", "你好", '{"type":"token","token":"你好"}'.encode()),
    ("control", "\x00\x1f", b'{"type":"token","token":"\\u0000\\u001f"}'),
    ("empty", "", b'{"type":"token","token":""}'),
    ("blank line inside", "one\n\ntwo", b'{"type":"token","token":"one\\n\\ntwo"}'),
    ("line separator", "a\u2028b", b'{"type":"token","token":"a\\u2028b"}'),
    ("paragraph separator", "a\u2029b", b'{"type":"token","token":"a\\u2029b"}'),
    ("next line", "a\x85b", b'{"type":"token","token":"a\\u0085b"}'),
    ("all separators", "\u2028\u2029\x85\u2028", b'{"type":"token","token":"\\u2028\\u2029\\u0085\\u2028"}'),
    # Neighbours of the separators in UTF-8 (same lead bytes) stay as they are.
    (
        "separator neighbours",
        "\u2027\u202a\u2014\x84\xa0",
        '{"type":"token","token":"\u2027\u202a\u2014\x84\xa0"}'.encode(),
    ),
]


@pytest.mark.parametrize(("token", "data"), [(t, d) for _, t, d in TOKEN_CASES], ids=[n for n, _, _ in TOKEN_CASES])
def test_token_frame_bytes(token: str, data: bytes) -> None:
    frame = token_frame(token)
    assert frame == b"event: token\ndata: " + data + b"\n\n"
    # One frame: the only blank line is the terminator, and the data line is JSON that gives the token back.
    assert frame.count(b"\n\n") == 1 and frame.endswith(b"\n\n")
    # No character that any client may take for a line end is written raw.
    assert frame.decode().splitlines() == frame.decode().split("\n")[:-1]
    assert json.loads(frame.split(b"data: ", 1)[1]) == {"type": "token", "token": token}


def test_token_frames_join_one_frame_per_token() -> None:
    tokens = ["Hi", " ", "there", "\n", "🎉"]
    assert token_frames(tokens) == b"".join(token_frame(t) for t in tokens)
    assert token_frames([]) == b""


def test_done_frame_bytes() -> None:
    frame = done_frame('Hi "you"\n✓', "mock:gpt-4.1", {"tokens": 3}, "default:alice")
    assert frame == (
        b"event: done\n"
        b'data: {"type":"done","message":{"role":"assistant","content":"Hi \\"you\\"\\n\xe2\x9c\x93"},'
        b'"provider":"mock:gpt-4.1","usage":{"tokens":3},"conversationId":"default:alice"}\n\n'
    )


def test_done_frame_with_reported_usage_keeps_key_order() -> None:
    frame = done_frame("x", "openai:gpt-4.1", {"tokens": 7, "inputTokens": 5, "outputTokens": 7}, "c1")
    data = frame.split(b"data: ", 1)[1]
    assert b'"usage":{"tokens":7,"inputTokens":5,"outputTokens":7}' in data
    assert json.loads(data)["conversationId"] == "c1"


def test_error_frame_without_code() -> None:
    assert (
        error_frame('Bad "thing"') == b'event: error\ndata: {"type":"error","error":{"message":"Bad \\"thing\\""}}\n\n'
    )


def test_error_frame_with_code() -> None:
    frame = error_frame("Provider 'openai' is not configured (missing API key).", "provider_not_configured")
    assert frame == (
        b'event: error\ndata: {"type":"error","error":{"message":"Provider \'openai\' is not configured'
        b' (missing API key).","code":"provider_not_configured"}}\n\n'
    )


def test_line_separators_in_tokens_are_escaped_in_a_batch() -> None:
    tokens = ["x\u2028", " ", "\u2029y", "\x85", "—"]
    body = token_frames(tokens)
    assert body == b"".join(token_frame(t) for t in tokens)
    assert b"\xe2\x80\xa8" not in body and b"\xe2\x80\xa9" not in body and b"\xc2\x85" not in body
    assert body.count(b"\\u2028") == body.count(b"\\u2029") == body.count(b"\\u0085") == 1
    assert body.decode().splitlines() == body.decode().split("\n")[:-1]
    for token in tokens:  # a batch of one token (each relayed chunk's) takes its own path
        assert token_frames([token]) == token_frame(token)


def test_with_request_id_adds_it_to_an_error_frame_only() -> None:
    for message, code in (('Bad "thing"', None), ("gone\u2028", "conversation_deleted")):
        assert with_request_id(error_frame(message, code), "r-1") == error_frame(message, code, "r-1")
    assert with_request_id(error_frame("x", "c"), None) == error_frame("x", "c")
    done = done_frame("hi", "mock:m", {"tokens": 1}, "c")
    assert with_request_id(done, "r-1") == done and with_request_id(token_frame("t"), "r-1") == token_frame("t")


def test_line_separators_in_done_and_error_frames_are_escaped() -> None:
    done = done_frame("a\u2028b\u2029c\x85d", "mock:m\u2028", {"tokens": 2}, "conv\u2029\x85")
    assert done == (
        b'event: done\ndata: {"type":"done","message":{"role":"assistant","content":"a\\u2028b\\u2029c\\u0085d"},'
        b'"provider":"mock:m\\u2028","usage":{"tokens":2},"conversationId":"conv\\u2029\\u0085"}\n\n'
    )
    data = json.loads(done.split(b"data: ", 1)[1])
    assert data["message"]["content"] == "a\u2028b\u2029c\x85d" and data["conversationId"] == "conv\u2029\x85"
    error = error_frame("bad\u2028news\x85", "c\u2029")
    assert error == (
        b'event: error\ndata: {"type":"error","error":{"message":"bad\\u2028news\\u0085","code":"c\\u2029"}}\n\n'
    )


def test_heartbeats_reach_apps_as_empty_messages() -> None:
    # A comment line followed by ONE newline: no blank line, so no parser ever ends an event on a heartbeat.
    assert PING_FRAME == b": ping\n"
    stream = token_frame("a") + PING_FRAME + PING_FRAME + token_frame("b")
    blocks = [b for b in stream.split(b"\n\n") if b]
    assert len(blocks) == 2  # the two token events, each whole; the pings are comment lines inside the second
    assert blocks[1].startswith(b": ping\n: ping\nevent: token\n")


def test_stream_headers() -> None:
    assert dict(SSE_HEADERS) == {
        b"content-type": b"text/event-stream; charset=utf-8",
        b"cache-control": b"no-cache",
        b"x-accel-buffering": b"no",
    }
