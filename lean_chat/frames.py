"""Our Server-Sent Events: the exact bytes of the chat frames (`token`, `done`, `error`, the opt-in events), heartbeat.

Two rules beyond the SSE grammar keep every client reading them alike: the heartbeat is a comment line that
never ends an event (`: ping\n`, no blank line), and U+2028, U+2029 and U+0085 inside `data:` are written as
`\\uXXXX` escapes, since some clients split lines on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

__all__ = [
    "PING_FRAME",
    "SSE_HEADERS",
    "done_frame",
    "error_frame",
    "event_frame",
    "token_frame",
    "token_frames",
    "token_frames_with_ids",
    "with_id",
    "with_request_id",
]

_encode = msgspec.json.Encoder().encode

_TOKEN_PREFIX = b'event: token\ndata: {"type":"token","token":'
_FRAME_END = b"}\n\n"
_DONE_PREFIX = b'event: done\ndata: {"type":"done","message":{"role":"assistant","content":'
_BETWEEN_TOKENS = _FRAME_END + _TOKEN_PREFIX
_STOPPED_END = b',"stopped":true' + _FRAME_END
_ERROR_PREFIX = b'event: error\ndata: {"type":"error","error":'

# One newline only: a blank line would end an (empty) event, which some clients hand to the app as a message.
PING_FRAME = b": ping\n"

# UTF-8 of the characters that some SSE clients take for line ends (U+2028, U+2029, U+0085), and their escapes.
_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"), (b"\xc2\x85", b"\\u0085"))

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _has_separator(text: str) -> bool:
    """True when `text` holds U+2028, U+2029 or U+0085 (free for ASCII: CPython knows a string's widest character)."""
    return not text.isascii() and ("\u2028" in text or "\u2029" in text or "\x85" in text)


def _escape_separators(data: bytes) -> bytes:
    """Encoded JSON with U+2028, U+2029 and U+0085 written as `\\uXXXX` escapes."""
    for raw, escaped in _SEPARATORS:
        data = data.replace(raw, escaped)
    return data


def token_frame(token: str) -> bytes:
    """One `token` frame."""
    data = _encode(token)
    if not token.isascii() and _has_separator(token):  # ASCII (most tokens) decided without a call
        data = _escape_separators(data)
    return _TOKEN_PREFIX + data + _FRAME_END


def token_frames(tokens: Sequence[str]) -> bytes:
    """Many `token` frames, joined for one write."""
    if len(tokens) == 1:  # a relayed chunk's one token: no join (a third of the cost), and no call of token_frame
        token = tokens[0]
        data = _encode(token)
        if not token.isascii() and _has_separator(token):
            data = _escape_separators(data)
        return _TOKEN_PREFIX + data + _FRAME_END
    # One join of the encoded tokens with the bytes between two of them: no per-token concatenation.
    body = _BETWEEN_TOKENS.join(map(_encode, tokens))
    if not body:
        return b""
    # Checked once per batch: ASCII bytes by `isascii` (word at a time), other text as a string, whose search for a
    # character is cheaper than a scan of the bytes for three sequences.
    if not body.isascii() and _has_separator("".join(tokens)):
        body = _escape_separators(body)
    return _TOKEN_PREFIX + body + _FRAME_END


def done_frame(
    content: str,
    provider: str,
    usage: dict[str, int],
    conversation_id: str,
    stopped: bool = False,
    parts: list[dict[str, Any]] | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> bytes:
    """The `done` frame that ends a successful stream (`stopped`: the user pressed Stop, which it says last).

    `parts` and `steps` (clients that opted in to events) go after `message.content` and after `conversationId`.
    """
    frame = b"".join(
        (
            _DONE_PREFIX,
            _encode(content),
            b"}" if parts is None else b',"parts":' + _encode(parts) + b"}",
            b',"provider":',
            _encode(provider),
            b',"usage":',
            _encode(usage),
            b',"conversationId":',
            _encode(conversation_id),
            b"" if steps is None else b',"steps":' + _encode(steps),
            _STOPPED_END if stopped else _FRAME_END,
        )
    )
    if parts is not None:
        if not frame.isascii():
            frame = _escape_separators(frame)
    elif _has_separator(content) or _has_separator(provider) or _has_separator(conversation_id):
        frame = _escape_separators(frame)
    return frame


def event_frame(name: bytes, data: dict[str, Any]) -> bytes:
    """One opt-in event frame (`reasoning`, `tool_call`, `tool_result`, `step`): `data` starts with its `type`."""
    body = _encode(data)
    if not body.isascii():
        body = _escape_separators(body)
    return b"event: " + name + b"\ndata: " + body + b"\n\n"


def error_frame(message: str, code: str | None = None, request_id: str | None = None) -> bytes:
    """The `error` frame that ends a failed stream (with the request's id, when the client sent one)."""
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["code"] = code
    if request_id is not None:
        error["requestId"] = request_id  # [A-Za-z0-9._:-] only: no line separator to escape
    data = _encode(error)
    if _has_separator(message) or (code is not None and _has_separator(code)):
        data = _escape_separators(data)
    return _ERROR_PREFIX + data + _FRAME_END


def with_request_id(frame: bytes, request_id: str | None) -> bytes:
    """An `error` frame (without an id line or a request id yet) with this request id added; others unchanged."""
    if request_id is None or not frame.startswith(_ERROR_PREFIX):
        return frame
    return frame[: -len(_FRAME_END) - 1] + b',"requestId":' + _encode(request_id) + b"}" + _FRAME_END


_ID_END = b"}\nid: %d\n\n"


def with_id(frame: bytes, frame_id: int) -> bytes:
    """A frame with an `id:` line (resumable streams): the frame's blank line moves after it."""
    return frame[:-1] + b"id: %d\n\n" % frame_id


def token_frames_with_ids(tokens: Sequence[str], first_id: int) -> bytes:
    """Many `token` frames with `id:` lines numbered from `first_id`, joined for one write."""
    if len(tokens) == 1:  # paced replies: one token per batch
        body = _TOKEN_PREFIX + _encode(tokens[0]) + _ID_END % first_id
    else:
        body = b"".join([_TOKEN_PREFIX + _encode(token) + _ID_END % i for i, token in enumerate(tokens, first_id)])
    if not body.isascii() and _has_separator("".join(tokens)):
        body = _escape_separators(body)
    return body
