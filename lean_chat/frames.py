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
    "token_frame",
    "token_frames",
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


def error_frame(message: str, code: str | None = None, request_id: str | None = None) -> bytes:
    """The `error` frame that ends a failed stream (with the request's id, when known)."""
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["code"] = code
    if request_id is not None:
        error["requestId"] = request_id
    return _ERROR_PREFIX + _encode(error) + _FRAME_END
