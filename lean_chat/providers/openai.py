"""OpenAI chat completions, streamed (and any OpenAI-compatible server: vLLM, Ollama, LM Studio)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from .base import ContextMessage, ReasoningOptions, StreamCall, ToolSpec
from .events import ReasoningDelta, StepEnd
from .http_provider import DONE, FINISHED, MORE, HTTPProvider, HTTPProviderOptions, ReadHandler
from .messages import split_system
from .openai_tool_calls import ToolCallDelta, ToolCallGatherer
from .parts import Part, TextPart
from .retry import UpstreamError
from .sse_parser import LineTooLong, SSEParser
from .step_output import StepOutput
from .transcript import result_text, steps_of
from .upstream import ErrorInfo, error_detail, line_too_long

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

__all__ = ["OpenAIProvider"]


# gc=False: decoded chunks hold no cycles, so the collector need not track (and walk) them.
class _Delta(msgspec.Struct, gc=False):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None  # vLLM, DeepSeek, LM Studio
    reasoning: Any = None  # Ollama, OpenRouter (a string)
    tool_calls: list[ToolCallDelta] | None = None


class _Choice(msgspec.Struct, gc=False):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Chunk(msgspec.Struct, gc=False):
    """The fields of a `chat.completion.chunk` we read (or a vLLM error object)."""

    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: ErrorInfo | str | None = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_encode = msgspec.json.Encoder().encode
_DONE = b"[DONE]"
# Single bytes, searched as ints (one memchr each; see sse_parser).
_LF, _CR = ord("\n"), ord("\r")

# OpenAI's finish reasons in the engine's words.
_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "content_filter": "content-filter",
}


def _effort(reasoning: ReasoningOptions) -> str | None:
    """`reasoning_effort`: the asked effort, else one read from a token budget."""
    if reasoning.effort:
        return reasoning.effort
    budget = reasoning.budget_tokens
    if budget is None:
        return None
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _arguments(args: Any) -> str:
    """A stored call's arguments as JSON text (text that did not decode is sent back as the model wrote it)."""
    return args if isinstance(args, str) else _encode(args).decode()


def _function(tool: ToolSpec) -> dict[str, Any]:
    """A tool as OpenAI announces it."""
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}


def _turn(message: ContextMessage, parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    """A stored tool turn: per step an assistant message (text, `tool_calls`), then a `tool` message per call."""
    out: list[dict[str, Any]] = []
    for step in steps_of(parts):
        text = "".join(p.text for p in step.said if type(p) is TextPart)
        calls = step.calls
        if not text and not calls:
            continue
        said: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            said["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _arguments(c.args)}}
                for c in calls
            ]
        out.append(said)
        out.extend({"role": "tool", "tool_call_id": r.id, "content": result_text(r)} for r in step.results)
    if not out and message.content:
        out.append({"role": "assistant", "content": message.content})
    return out


class OpenAIProvider(HTTPProvider):
    """Streams `POST {base}/chat/completions` with `stream: true`."""

    name = "openai"
    truncated = "the stream ended before the reply was complete (no finish_reason or [DONE])"

    def __init__(
        self, client: httpx.AsyncClient, *, include_usage: bool = True, **options: Unpack[HTTPProviderOptions]
    ) -> None:
        super().__init__(client, **options)
        self.url = self.base_url + "/chat/completions"
        self.include_usage = include_usage

    def request_headers(self) -> dict[str, str]:
        """The key as a bearer token."""
        return {"authorization": f"Bearer {self.api_key}", "content-type": "application/json"}

    def endpoint(self, call: StreamCall) -> str:
        """The chat completions URL (the same for every model)."""
        return self.url

    def body(self, call: StreamCall) -> bytes:
        """The request body: system text first, then the conversation (tool turns as OpenAI replays them)."""
        system, chat = split_system(call.messages)
        messages = [{"role": "system", "content": system}] if system else []
        for m in chat:
            if m.parts is None:
                messages.append({"role": m.role, "content": m.content})
            else:
                messages.extend(_turn(m, m.parts))
        body: dict[str, Any] = {"model": call.model, "messages": messages, "stream": True}
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        if call.tools:
            body["tools"] = [{"type": "function", "function": _function(t)} for t in call.tools]
        if call.reasoning is not None:
            effort = _effort(call.reasoning)
            if effort:
                body["reasoning_effort"] = effort
        return _encode(body)

    def reader(self, call: StreamCall, output: StepOutput, parser: SSEParser) -> ReadHandler:
        """Per read, its events in order: `[DONE]` ends the stream, an error object fails, deltas and refusals are
        tokens.

        The common read, one whole `data:` event with nothing held by the parser, is taken without calling it (one
        call per relayed chunk: this one). The rare events: reasoning deltas (`reasoning_content`, or `reasoning` as
        some servers name it), and tool call fragments, gathered into calls that are complete at the finish reason.
        """
        secrets = self.secrets
        emit = output.emit
        gatherer = ToolCallGatherer()
        limit = self.max_line_bytes
        finish = "stop"

        def ended() -> StepEnd:
            return StepEnd(finish)

        output.finish = ended

        def read(data: bytes, batch: list[str]) -> int:
            nonlocal finish
            payload = data[6:-2]
            if (
                parser.idle
                and data[:6] == b"data: "
                and data[-2:] == b"\n\n"
                and _LF not in payload
                and _CR not in payload
                and len(data) <= limit
            ):
                payloads: Sequence[bytes] = (payload,)  # what `feed` would give: one event, this data
            else:
                try:
                    payloads = [event.data for event in (parser.feed(data) if data else parser.flush())]
                except LineTooLong:
                    raise line_too_long(limit) from None
            outcome = MORE
            for payload in payloads:
                if payload == _DONE:
                    return DONE
                try:
                    chunk = _decode_chunk(payload)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
                if chunk.error is not None:
                    raise UpstreamError(error_detail(chunk.error, secrets))
                if chunk.usage is not None:
                    call.usage.input_tokens = chunk.usage.prompt_tokens
                    call.usage.output_tokens = chunk.usage.completion_tokens
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                if delta is not None:
                    content = delta.content
                    if content:  # the hot path: as few checks as before (reasoning ends where text begins)
                        if delta.reasoning_content:
                            emit(batch, ReasoningDelta(delta.reasoning_content))
                        batch.append(content)
                        if delta.tool_calls:
                            gatherer.take(delta.tool_calls)
                    else:
                        if delta.reasoning_content:
                            emit(batch, ReasoningDelta(delta.reasoning_content))
                        elif delta.reasoning and type(delta.reasoning) is str:
                            emit(batch, ReasoningDelta(delta.reasoning))
                        if delta.refusal:
                            batch.append(delta.refusal)
                        if delta.tool_calls:
                            gatherer.take(delta.tool_calls)
                reason = choice.finish_reason
                if not reason:
                    continue
                calls = gatherer.complete(cut=reason == "length")
                for tool_call in calls:
                    emit(batch, tool_call)
                finish = _FINISH.get(reason, "other")
                if calls and finish == "stop":
                    finish = "tool-calls"  # Ollama ends a step of tool calls with "stop"
                outcome = FINISHED
            return outcome

        return read
