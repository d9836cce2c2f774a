"""The AI SDK's UI message stream: the exact bytes of its chunks, made from the engine's batches and outcome.

Each chunk is one SSE event `data: {json}\\n\\n` (no `event:` line), and the stream ends with `data: [DONE]\\n\\n`.
A reply is `start` (its `messageId` is the id the reply is saved under), `start-step`, `text-start`, one
`text-delta` per token, `text-end`, `finish-step`, `finish` (with `finishReason` and the usage in
`messageMetadata`); a failure ends with `error` (`errorText` is our `error` frame's message, `code` beside it).
Heartbeats stay our `: ping\\n` comment, which the SDK's SSE parser skips. Kept streams (resume) are kept as the
`/chat/stream` frames (turn/framing.py); `UIReframer` turns them into these chunks for a reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ..frames import SSE_HEADERS
from ..turn.outcomes import Done, Failed, Outcome, Stopped

__all__ = ["UI_HEADERS", "UIFramer", "UIReframer"]

UI_HEADERS: list[tuple[bytes, bytes]] = [*SSE_HEADERS, (b"x-vercel-ai-ui-message-stream", b"v1")]

_encode = msgspec.json.Encoder().encode

_DATA = b"data: "
_END = b"\n\n"
_DONE = b"data: [DONE]\n\n"
_TEXT_ID = b"text-1"  # the reply's one text part (one step)
_START_STEP = b'data: {"type":"start-step"}\n\n'
_TEXT_START = b'data: {"type":"text-start","id":"' + _TEXT_ID + b'"}\n\n'
_DELTA_PREFIX = b'data: {"type":"text-delta","id":"' + _TEXT_ID + b'","delta":'
_DELTA_END = b"}\n\n"
_BETWEEN_DELTAS = _DELTA_END + _DELTA_PREFIX
_TEXT_END = b'data: {"type":"text-end","id":"' + _TEXT_ID + b'"}\n\n'
_FINISH_STEP = b'data: {"type":"finish-step"}\n\n'
# UTF-8 of U+2028, U+2029 and U+0085, and their JSON escapes (frames.py: some SSE clients split lines on them).
_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"), (b"\xc2\x85", b"\\u0085"))


def _chunk(value: dict[str, Any]) -> bytes:
    """One chunk's event (a chunk made once per stream: the separators escaped whatever it holds)."""
    data = _encode(value)
    if not data.isascii():
        for raw, escaped in _SEPARATORS:
            data = data.replace(raw, escaped)
    return _DATA + data + _END


class UIFramer:
    """One stream's chunks: `start` and the step open before the first token, the text part around the tokens."""

    __slots__ = ("message_id", "opened", "text_open")

    def __init__(self, message_id: str | None) -> None:
        self.message_id = message_id  # the id the reply is saved under (the `start` chunk's `messageId`)
        self.opened = False
        self.text_open = False

    def _opening(self, text: bool) -> bytes:
        """What comes before the first token (or the end): `start`, `start-step`, and `text-start` for a token."""
        head = b""
        if not self.opened:
            self.opened = True
            start: dict[str, Any] = {"type": "start"}
            if self.message_id is not None:
                start["messageId"] = self.message_id
            head = _chunk(start) + _START_STEP
        if text and not self.text_open:
            self.text_open = True
            head += _TEXT_START
        return head

    def tokens(self, batch: Sequence[str]) -> bytes:
        """One `text-delta` per token, joined for one write."""
        return self.encoded_tokens(list(map(_encode, batch)))

    def encoded_tokens(self, encoded: list[bytes]) -> bytes:
        """One `text-delta` per token, each given as its JSON string."""
        if not encoded:
            return b""
        body = _BETWEEN_DELTAS.join(encoded)
        if not body.isascii():
            for raw, escaped in _SEPARATORS:
                body = body.replace(raw, escaped)
        head = b"" if self.text_open else self._opening(True)
        return head + _DELTA_PREFIX + body + _DELTA_END

    def outcome(self, outcome: Outcome, request_id: str | None) -> bytes:
        """The stream's end: `text-end`, `finish-step`, `finish` and `[DONE]`; or `error` and `[DONE]`."""
        head = self._opening(False)
        if isinstance(outcome, Done):
            if self.text_open:
                head += _TEXT_END
                self.text_open = False
            metadata: dict[str, Any] = {
                "provider": outcome.provider,
                "usage": outcome.usage,
                "conversationId": outcome.conversation_id,
            }
            if isinstance(outcome, Stopped):
                metadata["stopped"] = True
            finish = {"type": "finish", "finishReason": "stop", "messageMetadata": metadata}
            return head + _FINISH_STEP + _chunk(finish) + _DONE
        return head + self.error(outcome, request_id)

    @staticmethod
    def error(failed: Failed, request_id: str | None) -> bytes:
        """An `error` chunk (our code and the client's request id beside `errorText`) and `[DONE]`."""
        error: dict[str, Any] = {"type": "error", "errorText": failed.message, "code": failed.code}
        if request_id is not None:
            error["requestId"] = request_id
        return _chunk(error) + _DONE


# The kept frames (frames.py) as a reader reads them back: each frame ends with a blank line, and a kept one has
# an `id:` line last (the frames made for one reader alone, `resume_gap` and `hub_unavailable`, have none).
_KEPT_TOKEN = b'event: token\ndata: {"type":"token","token":'
_KEPT_DONE = b"event: done\ndata: "
_KEPT_ERROR = b"event: error\ndata: "
_ID_LINE = b"}\nid: "


class _Message(msgspec.Struct):
    content: str


class _DoneData(msgspec.Struct):
    """The data of a kept `done` frame (the fields a `finish` chunk carries)."""

    message: _Message
    provider: str
    usage: dict[str, int]
    conversationId: str
    stopped: bool = False


class _ErrorBody(msgspec.Struct):
    message: str
    code: str = "internal_error"
    requestId: str | None = None


class _ErrorData(msgspec.Struct):
    """The data of a kept `error` frame."""

    error: _ErrorBody


_decode_done = msgspec.json.Decoder(_DoneData).decode
_decode_error = msgspec.json.Decoder(_ErrorData).decode


class UIReframer:
    """A reader's view of a kept stream as UI chunks: each `token` frame's JSON string is copied into a
    `text-delta` as it is (no decoding per token); `done` and `error` are read once, for the end."""

    __slots__ = ("ended", "framer")

    def __init__(self, message_id: str | None) -> None:
        self.framer = UIFramer(message_id)
        self.ended = False

    def __call__(self, kept: bytes) -> bytes:
        """The chunks for these kept frames (nothing after the end)."""
        if self.ended:
            return b""
        tokens: list[bytes] = []
        out: list[bytes] = []
        for frame in kept.split(_END):
            if frame.startswith(_KEPT_TOKEN):
                end = frame.rfind(_ID_LINE)
                tokens.append(frame[len(_KEPT_TOKEN) : end if end >= 0 else len(frame) - 1])
                continue
            if not frame.startswith((_KEPT_DONE, _KEPT_ERROR)):
                continue
            if tokens:
                out.append(self.framer.encoded_tokens(tokens))
                tokens = []
            out.append(self._end(frame))
            self.ended = True
            break
        if tokens:
            out.append(self.framer.encoded_tokens(tokens))
        return b"".join(out)

    def _end(self, frame: bytes) -> bytes:
        """The chunks that end the stream, from its kept `done` or `error` frame."""
        data = frame[frame.index(_DATA) + len(_DATA) :]
        newline = data.find(b"\n")
        if newline >= 0:
            data = data[:newline]
        if frame.startswith(_KEPT_DONE):
            done = _decode_done(data)
            kind = Stopped if done.stopped else Done
            return self.framer.outcome(kind(done.message.content, done.provider, done.usage, done.conversationId), None)
        error = _decode_error(data).error
        return self.framer.outcome(Failed(error.message, error.code), error.requestId)
