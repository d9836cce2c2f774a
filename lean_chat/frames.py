"""Server-Sent Events: exact frame bytes for the chat events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = [
    "PING_FRAME",
    "SSE_HEADERS",
    "done_frame",
    "error_frame",
    "mark_stopped",
    "token_frame",
    "token_frames",
    "token_frames_with_ids",
    "with_id",
]

_encode = msgspec.json.Encoder().encode

_TOKEN_PREFIX = b'event: token\ndata: {"type":"token","token":'
_FRAME_END = b"}\n\n"
_DONE_PREFIX = b'event: done\ndata: {"type":"done","message":{"role":"assistant","content":'
_BETWEEN_TOKENS = _FRAME_END + _TOKEN_PREFIX
_ERROR_PREFIX = b'event: error\ndata: {"type":"error","error":'

PING_FRAME = b": ping\n\n"

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def token_frame(token: str) -> bytes:
    """One `token` frame."""
    return _TOKEN_PREFIX + _encode(token) + _FRAME_END


def token_frames(tokens: Iterable[str]) -> bytes:
    """Many `token` frames, joined for one write."""
    # One join of the encoded tokens with the bytes between two of them: no per-token concatenation.
    body = _BETWEEN_TOKENS.join(map(_encode, tokens))
    return _TOKEN_PREFIX + body + _FRAME_END if body else b""


def done_frame(content: str, provider: str, usage: dict[str, int], conversation_id: str) -> bytes:
    """The `done` frame that ends a successful stream."""
    return b"".join(
        (
            _DONE_PREFIX,
            _encode(content),
            b'},"provider":',
            _encode(provider),
            b',"usage":',
            _encode(usage),
            b',"conversationId":',
            _encode(conversation_id),
            _FRAME_END,
        )
    )


def error_frame(message: str, code: str | None = None) -> bytes:
    """The `error` frame that ends a failed stream."""
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["code"] = code
    return _ERROR_PREFIX + _encode(error) + _FRAME_END


def with_id(frame: bytes, frame_id: int) -> bytes:
    """A frame with an `id:` line (for resumable streams): the frame's blank line moves after it."""
    return frame[:-1] + b"id: " + str(frame_id).encode() + b"\n\n"


def token_frames_with_ids(tokens: Iterable[str], first_id: int) -> bytes:
    """Many `token` frames with `id:` lines from `first_id` on, joined for one write."""
    parts: list[bytes] = []
    add = parts.append
    for frame_id, token in enumerate(tokens, first_id):
        add(_TOKEN_PREFIX)
        add(_encode(token))
        add(b"}\nid: %d\n\n" % frame_id)
    return b"".join(parts)


def mark_stopped(done: bytes) -> bytes:
    """A `done` frame that adds `"stopped": true` (the user pressed Stop)."""
    return done[: -len(_FRAME_END)] + b',"stopped":true' + _FRAME_END
