"""The AI SDK's UI message stream: the exact bytes of its chunks, made from the engine's batches and outcome.

Each chunk is one SSE event `data: {json}\\n\\n` (no `event:` line), and the stream ends with `data: [DONE]\\n\\n`.
A reply is `start` (its `messageId` is the id the reply is saved under), then per step `start-step`, its parts
(`text-start`, one `text-delta` per token, `text-end`; `reasoning-start/delta/end`; `tool-input-start` and
`tool-input-available`, `tool-output-available` or `tool-output-error`), `finish-step`; then `finish` (with
`finishReason` and the usage in `messageMetadata`). A failure ends with `error` (`errorText` is our `error`
frame's message, `code` beside it). The mapping of each engine event is the table of docs/ai-sdk.md.
Heartbeats stay our `: ping\\n` comment, which the SDK's SSE parser skips. Kept streams (resume) are kept as the
`/chat/stream` frames (turn/framing.py); `UIReframer` turns them into these chunks for a reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ..frames import SSE_HEADERS
from ..turn.events import ReasoningDelta, StepFinished, ToolCallEvent, ToolResultEvent, TurnEvent
from ..turn.outcomes import Done, Failed, Outcome, Stopped

__all__ = ["UI_HEADERS", "UIFramer", "UIReframer"]

UI_HEADERS: list[tuple[bytes, bytes]] = [*SSE_HEADERS, (b"x-vercel-ai-ui-message-stream", b"v1")]

_encode = msgspec.json.Encoder().encode

_DATA = b"data: "
_END = b"\n\n"
_DONE = b"data: [DONE]\n\n"
_START_STEP = b'data: {"type":"start-step"}\n\n'
_FINISH_STEP = b'data: {"type":"finish-step"}\n\n'
_DELTA_END = b"}\n\n"
# UTF-8 of U+2028, U+2029 and U+0085, and their JSON escapes (frames.py: some SSE clients split lines on them).
_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"), (b"\xc2\x85", b"\\u0085"))


def _escaped(data: bytes) -> bytes:
    """Encoded JSON with U+2028, U+2029 and U+0085 written as escapes."""
    if not data.isascii():
        for raw, escaped in _SEPARATORS:
            data = data.replace(raw, escaped)
    return data


def _chunk(value: dict[str, Any]) -> bytes:
    """One chunk's event (chunks made once per part or per stream, not per token)."""
    return _DATA + _escaped(_encode(value)) + _END


class UIFramer:
    """One stream's chunks: `start` first, each step between `start-step` and `finish-step`, each run of text or
    reasoning a part of its own (`text-1`, `reasoning-2`, ...: ids numbered in the message), tool calls and
    results as their chunks."""

    __slots__ = (
        "_between",
        "_delta_prefix",
        "finish_reason",
        "message_id",
        "opened",
        "parts",
        "reasoning_id",
        "step_open",
        "steps_finished",
        "text_id",
    )

    def __init__(self, message_id: str | None) -> None:
        self.message_id = message_id  # the id the reply is saved under (the `start` chunk's `messageId`)
        self.opened = False
        self.step_open = False
        self.steps_finished = 0
        self.finish_reason = "stop"  # the last step's (a plain reply's step ends with `stop`)
        self.parts = 0  # parts opened so far (their ids' numbers)
        self.text_id: str | None = None  # the open text part
        self.reasoning_id: str | None = None  # the open reasoning part
        self._delta_prefix = b""
        self._between = b""

    def _open(self) -> bytes:
        """`start` (once) and `start-step` (once per step), when not yet written."""
        head = b""
        if not self.opened:
            self.opened = True
            start: dict[str, Any] = {"type": "start"}
            if self.message_id is not None:
                start["messageId"] = self.message_id
            head = _chunk(start)
        if not self.step_open:
            self.step_open = True
            head += _START_STEP
        return head

    def _close_parts(self) -> bytes:
        """`text-end` / `reasoning-end` for an open part."""
        tail = b""
        if self.text_id is not None:
            tail += _chunk({"type": "text-end", "id": self.text_id})
            self.text_id = None
        if self.reasoning_id is not None:
            tail += _chunk({"type": "reasoning-end", "id": self.reasoning_id})
            self.reasoning_id = None
        return tail

    def _new_id(self, kind: str) -> str:
        """The id of the message's next part."""
        self.parts += 1
        return f"{kind}-{self.parts}"

    def _open_text(self) -> bytes:
        """Open a text part (after the step's start and the end of a reasoning part)."""
        head = self._open() + self._close_parts()
        text_id = self.text_id = self._new_id("text")
        self._delta_prefix = b'data: {"type":"text-delta","id":' + _encode(text_id) + b',"delta":'
        self._between = _DELTA_END + self._delta_prefix
        return head + _chunk({"type": "text-start", "id": text_id})

    def tokens(self, batch: Sequence[str]) -> bytes:
        """One `text-delta` per token, joined for one write."""
        return self.encoded_tokens(list(map(_encode, batch)))

    def encoded_tokens(self, encoded: list[bytes]) -> bytes:
        """One `text-delta` per token, each given as its JSON string."""
        if not encoded:
            return b""
        head = b"" if self.text_id is not None else self._open_text()
        return head + self._delta_prefix + _escaped(self._between.join(encoded)) + _DELTA_END

    def event(self, item: TurnEvent) -> bytes:
        """The chunks of one engine event: reasoning, a tool call or result, the end of a step."""
        if isinstance(item, ReasoningDelta):
            if not item.text:
                return b""
            head = b""
            if self.reasoning_id is None:
                head = self._open() + self._close_parts()
                self.reasoning_id = self._new_id("reasoning")
                head += _chunk({"type": "reasoning-start", "id": self.reasoning_id})
            return head + _chunk({"type": "reasoning-delta", "id": self.reasoning_id, "delta": item.text})
        if isinstance(item, ToolCallEvent):
            head = self._open() + self._close_parts()
            call = {"toolCallId": item.id, "toolName": item.name}
            head += _chunk({"type": "tool-input-start", **call})
            if isinstance(item.args, str):  # the model's arguments did not decode: an `invalid_arguments` follows
                error = "The tool call's arguments are not valid JSON."
                return head + _chunk({"type": "tool-input-error", **call, "input": item.args, "errorText": error})
            return head + _chunk({"type": "tool-input-available", **call, "input": item.args})
        if isinstance(item, ToolResultEvent):
            if item.is_error:
                text = (item.error or {}).get("message", "The tool failed.")
                return _chunk({"type": "tool-output-error", "toolCallId": item.id, "errorText": text})
            return _chunk({"type": "tool-output-available", "toolCallId": item.id, "output": item.output})
        # StepFinished
        self.finish_reason = item.finish_reason
        self.steps_finished += 1
        head = self._open() + self._close_parts()
        self.step_open = False
        return head + _FINISH_STEP

    def outcome(self, outcome: Outcome, request_id: str | None) -> bytes:
        """The stream's end: the open part's end, `finish-step`, `finish` and `[DONE]`; or `error` and `[DONE]`."""
        if isinstance(outcome, Done):
            head = b"" if self.steps_finished and not self.step_open else self._open()
            head += self._close_parts()
            if self.step_open:
                self.step_open = False
                head += _FINISH_STEP
            metadata: dict[str, Any] = {
                "provider": outcome.provider,
                "usage": outcome.usage,
                "conversationId": outcome.conversation_id,
            }
            if isinstance(outcome, Stopped):
                metadata["stopped"] = True
            finish = {"type": "finish", "finishReason": self.finish_reason, "messageMetadata": metadata}
            return head + _chunk(finish) + _DONE
        head = b"" if self.opened else self._open()
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
_EVENT = b"event: "


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
            if not frame.startswith(_EVENT):
                continue  # a comment, or the empty tail after the last frame
            if tokens:
                out.append(self.framer.encoded_tokens(tokens))
                tokens = []
            if frame.startswith((_KEPT_DONE, _KEPT_ERROR)):
                out.append(self._end(frame))
                self.ended = True
                break
            event = _kept_event(frame)
            if event is not None:
                out.append(self.framer.event(event))
        if tokens:
            out.append(self.framer.encoded_tokens(tokens))
        return b"".join(out)

    def _end(self, frame: bytes) -> bytes:
        """The chunks that end the stream, from its kept `done` or `error` frame."""
        data = _data(frame)
        if frame.startswith(_KEPT_DONE):
            done = _decode_done(data)
            kind = Stopped if done.stopped else Done
            return self.framer.outcome(kind(done.message.content, done.provider, done.usage, done.conversationId), None)
        error = _decode_error(data).error
        return self.framer.outcome(Failed(error.message, error.code), error.requestId)


def _data(frame: bytes) -> bytes:
    """The JSON of a kept frame's `data:` line."""
    data = frame[frame.index(_DATA) + len(_DATA) :]
    newline = data.find(b"\n")
    return data if newline < 0 else data[:newline]


_decode_any = msgspec.json.Decoder().decode


def _kept_event(frame: bytes) -> TurnEvent | None:
    """The engine event a kept `reasoning`, `tool_call`, `tool_result` or `step` frame carries (docs/wire.md)."""
    try:
        data = _decode_any(_data(frame))
        kind = data["type"]
        if kind == "reasoning":
            return ReasoningDelta(str(data["delta"]))
        if kind == "tool_call":
            return ToolCallEvent(int(data["step"]), str(data["id"]), str(data["name"]), data.get("args"))
        if kind == "tool_result":
            error = data.get("error")
            return ToolResultEvent(
                int(data["step"]),
                str(data["id"]),
                str(data["name"]),
                data.get("output"),
                error if isinstance(error, dict) else None,
                bool(data.get("isError")),
            )
        if kind == "step":
            return StepFinished(int(data["index"]), str(data["finishReason"]), dict(data.get("usage") or {}))
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None
    return None
