"""Anthropic Messages, streamed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from .base import ContextMessage, ReasoningOptions, StreamCall
from .events import ReasoningDelta, StepEnd, ToolCall
from .http_provider import DONE, MORE, EventHandler, HTTPProvider, HTTPProviderOptions
from .messages import split_system
from .parts import Part, ReasoningPart, TextPart, ToolCallPart
from .retry import UpstreamError
from .sse_parser import SSEEvent
from .step_output import StepLog, StepOutput, is_whole_json, new_call_id
from .transcript import own_state, result_text, steps_of
from .upstream import ErrorInfo, error_detail

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

__all__ = ["ANTHROPIC_VERSION", "BUDGETS", "MODEL_ALIASES", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"

# Short names the reference accepts, mapped to the provider's name for that model.
MODEL_ALIASES = {
    "claude-3.5-sonnet": "claude-3-5-sonnet-latest",
    "claude-3-5-sonnet": "claude-3-5-sonnet-latest",
}

# Mid-stream errors worth another attempt while nothing has been sent yet.
_RETRY_ERROR_TYPES = frozenset({"overloaded_error", "api_error"})


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int | None = None
    output_tokens: int | None = None


class _Message(msgspec.Struct, gc=False):
    usage: _Usage | None = None


class _Delta(msgspec.Struct, gc=False):
    type: str | None = None
    text: str | None = None


class _Event(msgspec.Struct, gc=False):
    """The fields of a streamed event we read (a text delta, the hot path, needs no more)."""

    type: str = ""
    message: _Message | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: ErrorInfo | str | None = None


class _BlockDelta(msgspec.Struct, gc=False):
    type: str | None = None
    thinking: str | None = None
    signature: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None  # of message_delta


class _Block(msgspec.Struct, gc=False):
    """The block a content_block_start opens (thinking and tool_use blocks name their fields here)."""

    type: str = ""
    id: str | None = None
    name: str | None = None
    data: str | None = None  # redacted_thinking


class _BlockEvent(msgspec.Struct, gc=False):
    """The fields of the rarer events (blocks other than text, their starts and stops, message_delta) we read."""

    index: int = 0
    delta: _BlockDelta | None = None
    content_block: _Block | None = None


_decode_event = msgspec.json.Decoder(_Event).decode
_decode_block = msgspec.json.Decoder(_BlockEvent).decode
_encode = msgspec.json.Encoder().encode

# Anthropic's stop reasons in the engine's words.
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool-calls",
    "refusal": "content-filter",
}
# The thinking budget for each effort (Anthropic's minimum is 1024).
BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
MIN_BUDGET = 1024
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def _safe_id(call_id: str) -> str:
    """A call id as Anthropic takes it (letters, digits, `_` and `-`: another provider's ids may hold more)."""
    return _ID_UNSAFE.sub("_", call_id) or "call"


def _turn(message: ContextMessage, parts: tuple[Part, ...], model: str) -> list[dict[str, Any]]:
    """A stored tool turn: per step an assistant message of blocks (thinking first), then the tool results.

    Thinking goes back only with its own signature (or redacted data) from this model, unmodified and in order.
    """
    out: list[dict[str, Any]] = []
    for step in steps_of(parts):
        blocks: list[dict[str, Any]] = []
        for part in step.said:
            if type(part) is ReasoningPart:
                data = own_state(part.state, "anthropic", model)
                if data and "data" in data:
                    blocks.append({"type": "redacted_thinking", "data": data["data"]})
                elif data and "signature" in data:
                    blocks.append({"type": "thinking", "thinking": part.text, "signature": data["signature"]})
            elif type(part) is TextPart:
                if part.text:
                    blocks.append({"type": "text", "text": part.text})
            elif type(part) is ToolCallPart:
                args = part.args if isinstance(part.args, dict) else {}  # arguments that did not decode: none
                blocks.append({"type": "tool_use", "id": _safe_id(part.id), "name": part.name, "input": args})
        if not any(b["type"] in ("text", "tool_use") for b in blocks):
            continue
        out.append({"role": "assistant", "content": blocks})
        if step.results:
            results = []
            for r in step.results:
                result: dict[str, Any] = {"type": "tool_result", "tool_use_id": _safe_id(r.id)}
                result["content"] = result_text(r)
                if r.isError:
                    result["is_error"] = True
                results.append(result)
            out.append({"role": "user", "content": results})
    if not out and message.content:
        out.append({"role": "assistant", "content": message.content})
    return out


def _thinking(reasoning: ReasoningOptions, max_tokens: int) -> tuple[dict[str, Any], int]:
    """The `thinking` setting (a budget of at least 1024) and a `max_tokens` above the budget."""
    budget = max(MIN_BUDGET, reasoning.budget_tokens or BUDGETS.get(reasoning.effort or "", BUDGETS["medium"]))
    if budget >= max_tokens:
        max_tokens = budget + max_tokens  # the reply's own room stays what it was
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


class AnthropicProvider(HTTPProvider):
    """Streams `POST {base}/messages` with `stream: true`."""

    name = "anthropic"
    truncated = "the stream ended before the reply was complete (no message_stop)"

    def __init__(
        self, client: httpx.AsyncClient, *, max_tokens: int = 1024, **options: Unpack[HTTPProviderOptions]
    ) -> None:
        super().__init__(client, **options)
        self.url = self.base_url + "/messages"
        self.max_tokens = max_tokens

    def request_headers(self) -> dict[str, str]:
        """The key in `x-api-key`, and the API version."""
        return {"x-api-key": self.api_key, "anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}

    def endpoint(self, call: StreamCall) -> str:
        """The messages URL (the same for every model)."""
        return self.url

    def body(self, call: StreamCall) -> bytes:
        """The request body: system text apart, the conversation (tool turns as blocks), the model's full name."""
        system, chat = split_system(call.messages)
        messages: list[dict[str, Any]] = []
        for m in chat:
            if m.parts is None:
                messages.append({"role": m.role, "content": m.content})
            else:
                messages.extend(_turn(m, m.parts, call.model))
        body: dict[str, Any] = {
            "model": MODEL_ALIASES.get(call.model, call.model),
            "max_tokens": self.max_tokens,
            "messages": messages,
            "stream": True,
        }
        if system:
            body["system"] = system
        if call.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in call.tools
            ]
        if call.reasoning is not None:
            body["thinking"], body["max_tokens"] = _thinking(call.reasoning, self.max_tokens)
        return _encode(body)

    def handler(self, call: StreamCall, output: StepOutput) -> EventHandler:
        """Per event: text deltas are tokens, `message_stop` ends the stream, `event: error` fails.

        The rare events, decoded a second time with their own fields: thinking (its deltas streamed, its signature
        or redacted data kept for the next request), and tool_use blocks, whose `input_json_delta` pieces make a
        call at the block's stop (`{}` when none came; a call cut off by `max_tokens` is dropped).
        """
        secrets = self.secrets
        emit = output.emit
        log = StepLog(self.name, call.model)
        text = log.text
        keep = False  # the step has thinking: its text is logged too (thinking comes first in a message)
        thinking: dict[int, list[str]] = {}  # open thinking blocks: their signature pieces
        tools: dict[int, tuple[str, str, list[str]]] = {}  # open tool_use blocks: id, name, JSON pieces
        held: list[ToolCall] = []  # calls whose JSON is not whole: kept unless the reply was cut off
        finish = "stop"

        def ended() -> StepEnd:
            return log.end(finish)

        output.finish = ended

        def block(kind: str, item: _BlockEvent, batch: list[str]) -> None:
            """A block's start, delta (other than text) or stop, or the message's delta."""
            nonlocal keep, finish
            index = item.index
            if kind == "content_block_delta":
                delta = item.delta
                if delta is None:
                    return
                if delta.type == "thinking_delta":
                    if delta.thinking:
                        emit(batch, ReasoningDelta(delta.thinking))
                        log.thinking.append(delta.thinking)
                elif delta.type == "input_json_delta":
                    if delta.partial_json and index in tools:
                        tools[index][2].append(delta.partial_json)
                elif delta.type == "signature_delta":
                    if delta.signature and index in thinking:
                        thinking[index].append(delta.signature)
            elif kind == "content_block_start":
                started = item.content_block
                if started is None:
                    return
                if started.type == "thinking":
                    keep = True
                    log.close_text()
                    thinking[index] = []
                elif started.type == "redacted_thinking":
                    keep = True
                    log.close_text()
                    log.close_thinking(log.state({"data": started.data or ""}))
                elif started.type == "tool_use":
                    tools[index] = (started.id or new_call_id("toolu_"), started.name or "", [])
            elif kind == "content_block_stop":
                signature = thinking.pop(index, None)
                if signature is not None:
                    log.close_thinking(log.state({"signature": "".join(signature)}) if signature else None)
                tool = tools.pop(index, None)
                if tool is not None:
                    call_id, name, pieces = tool
                    args = "".join(pieces) or "{}"  # a call with no input_json_delta takes no arguments
                    tool_call = ToolCall(call_id, name, args)
                    if is_whole_json(args) and not held:  # (behind a held call it waits too: the order stays)
                        emit(batch, tool_call)
                        log.call(tool_call)
                    else:
                        held.append(tool_call)
            else:  # message_delta
                reason = item.delta.stop_reason if item.delta is not None else None
                if reason:
                    finish = _FINISH.get(reason, "other")
                    if reason != "max_tokens":
                        for tool_call in held:
                            emit(batch, tool_call)
                            log.call(tool_call)
                    held.clear()

        def handle(event: SSEEvent, batch: list[str]) -> int:
            if event.event == "ping":
                return MORE
            try:
                item = _decode_event(event.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return MORE
            kind = item.type or event.event
            if kind == "content_block_delta":
                delta = item.delta
                if delta is not None and delta.type == "text_delta":
                    if delta.text:
                        batch.append(delta.text)
                        if keep:
                            text.append(delta.text)
                    return MORE
            elif kind == "message_start":
                usage = item.message.usage if item.message is not None else None
                if usage is not None and usage.input_tokens is not None:
                    call.usage.input_tokens = usage.input_tokens
                return MORE
            elif kind == "message_delta":
                if item.usage is not None:
                    if item.usage.output_tokens is not None:
                        call.usage.output_tokens = item.usage.output_tokens
                    if item.usage.input_tokens is not None:
                        call.usage.input_tokens = item.usage.input_tokens
            elif kind == "message_stop":
                return DONE
            elif kind == "error":
                info = item.error or "unknown error"
                retry = not isinstance(info, str) and info.type in _RETRY_ERROR_TYPES
                raise UpstreamError(error_detail(info, secrets), retryable=retry)
            elif kind not in ("content_block_start", "content_block_stop"):
                return MORE
            try:
                rare = _decode_block(event.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return MORE
            block(kind, rare, batch)
            return MORE

        return handle
