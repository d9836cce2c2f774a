"""Google Gemini streamGenerateContent, streamed as SSE (the key travels in a header, never in the URL)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from .base import ReasoningOptions, StreamCall
from .events import ReasoningDelta, StepEnd, ToolCall
from .http_provider import FINISHED, MORE, EventHandler, HTTPProvider
from .messages import split_system
from .parts import Part, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from .retry import UpstreamError
from .sse_parser import SSEEvent
from .step_output import StepLog, StepOutput, new_call_id
from .transcript import own_state, steps_of
from .upstream import ErrorInfo, error_detail

__all__ = ["BUDGETS", "FILTERED_FINISH_REASONS", "GeminiProvider", "NewText"]

# Finish reasons that mean the reply was withheld by a content filter.
FILTERED_FINISH_REASONS = frozenset({"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"})
CONTENT_FILTERED = "content_filtered"


class _FunctionCall(msgspec.Struct, gc=False):
    name: str = ""
    args: Any = None
    id: str | None = None


class _Part(msgspec.Struct, gc=False):
    text: str | None = None
    thought: bool | None = None
    thoughtSignature: str | None = None  # noqa: N815
    functionCall: _FunctionCall | None = None  # noqa: N815


class _Content(msgspec.Struct, gc=False):
    parts: list[_Part] | None = None


class _Candidate(msgspec.Struct, gc=False):
    content: _Content | None = None
    finishReason: str | None = None  # noqa: N815 (the wire's name)


class _Feedback(msgspec.Struct, gc=False):
    blockReason: str | None = None  # noqa: N815


class _UsageMetadata(msgspec.Struct, gc=False):
    promptTokenCount: int | None = None  # noqa: N815
    candidatesTokenCount: int | None = None  # noqa: N815


class _Chunk(msgspec.Struct, gc=False):
    """The fields of a streamed GenerateContentResponse we read (or an error object)."""

    candidates: list[_Candidate] | None = None
    promptFeedback: _Feedback | None = None  # noqa: N815
    usageMetadata: _UsageMetadata | None = None  # noqa: N815
    error: ErrorInfo | str | None = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_encode = msgspec.json.Encoder().encode

# Gemini's finish reasons in the engine's words (the filtered ones fail the stream instead).
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
# The thinking budget for each effort (Gemini 2.5; Gemini 3 takes a thinking level instead).
BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def _thinking(reasoning: ReasoningOptions, model: str) -> dict[str, Any]:
    """`thinkingConfig`: thoughts included, with the asked budget, or a level (Gemini 3) or budget for the effort."""
    config: dict[str, Any] = {"includeThoughts": True}
    if reasoning.budget_tokens is not None:
        config["thinkingBudget"] = reasoning.budget_tokens
    elif reasoning.effort:
        if model.startswith("gemini-3"):
            config["thinkingLevel"] = "low" if reasoning.effort in ("minimal", "low") else "high"  # Pro has only these
        else:
            config["thinkingBudget"] = BUDGETS.get(reasoning.effort, BUDGETS["medium"])
    return config


def _response(result: ToolResultPart) -> dict[str, Any]:
    """A result as a functionResponse's `response` object: `{"output": ...}` or `{"error": ...}`."""
    return {"error": result.error or {}} if result.isError else {"output": result.output}


def _turn(parts: tuple[Part, ...], model: str) -> list[dict[str, Any]]:
    """A stored tool turn: per step a `model` content (thought signatures kept with their parts), then the results.

    Thought parts go back only when they carry a signature; ids go back only when Gemini gave them (this model).
    """
    out: list[dict[str, Any]] = []
    for step in steps_of(parts):
        said: list[dict[str, Any]] = []
        ids: dict[str, str] = {}
        for part in step.said:
            if isinstance(part, ToolResultPart):
                continue
            data = own_state(part.state, "gemini", model)
            signature = data.get("thoughtSignature") if data else None
            if type(part) is ReasoningPart:
                if signature:
                    said.append({"text": part.text, "thought": True, "thoughtSignature": signature})
                continue
            if type(part) is TextPart:
                item: dict[str, Any] = {"text": part.text}
            elif type(part) is ToolCallPart:
                function: dict[str, Any] = {"name": part.name, "args": part.args if isinstance(part.args, dict) else {}}
                if data and data.get("id"):
                    ids[part.id] = function["id"] = data["id"]
                item = {"functionCall": function}
            else:
                continue
            if signature:
                item["thoughtSignature"] = signature
            if item.get("text") != "" or signature:
                said.append(item)
        if not said:
            continue
        out.append({"role": "model", "parts": said})
        if step.results:
            answers = []
            for r in step.results:
                response: dict[str, Any] = {"name": r.name, "response": _response(r)}
                if r.id in ids:
                    response["id"] = ids[r.id]
                answers.append({"functionResponse": response})
            out.append({"role": "user", "parts": answers})
    return out


class NewText:
    """What each chunk's text adds: chunks are deltas, but some servers repeat the whole text so far.

    A server counts as repeating once a chunk extends all the text before it; from then on a chunk equal
    to the text so far adds nothing. Before that, an equal chunk is a delta that happens to repeat. The
    text so far is joined only when a chunk is longer than all of it, so long delta streams stay linear.
    """

    __slots__ = ("length", "parts", "repeating", "so_far")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.repeating = False
        self.so_far = ""

    def take(self, text: str) -> str:
        """The new part of a chunk's text."""
        if self.repeating:
            if text.startswith(self.so_far):
                fresh = text[len(self.so_far) :]
                self.so_far = text
                return fresh
            self.so_far += text
            return text
        if self.length and len(text) > self.length:
            so_far = "".join(self.parts)
            if text.startswith(so_far):
                self.repeating = True
                self.so_far = text
                self.parts = []
                return text[len(so_far) :]
        self.parts.append(text)
        self.length += len(text)
        return text


class GeminiProvider(HTTPProvider):
    """Streams `POST {base}/models/{model}:streamGenerateContent?alt=sse`."""

    name = "gemini"
    truncated = "the stream ended before the reply was complete (no finishReason)"
    params = {"alt": "sse"}

    def request_headers(self) -> dict[str, str]:
        """The key in `x-goog-api-key` (never in the URL)."""
        return {"x-goog-api-key": self.api_key, "content-type": "application/json"}

    def endpoint(self, call: StreamCall) -> str:
        """The streaming endpoint of the call's model."""
        return f"{self.base_url}/models/{quote(call.model, safe='.-_')}:streamGenerateContent"

    def body(self, call: StreamCall) -> bytes:
        """The request body: `systemInstruction`, then contents with assistant turns as role `model`."""
        system, chat = split_system(call.messages)
        contents: list[dict[str, Any]] = []
        for m in chat:
            if m.parts is not None and (turn := _turn(m.parts, call.model)):
                contents.extend(turn)
            else:
                contents.append({"role": "user" if m.role == "user" else "model", "parts": [{"text": m.content}]})
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if call.tools:
            declarations = [
                {"name": t.name, "description": t.description, "parametersJsonSchema": t.parameters} for t in call.tools
            ]
            body["tools"] = [{"functionDeclarations": declarations}]
        if call.reasoning is not None:
            body["generationConfig"] = {"thinkingConfig": _thinking(call.reasoning, call.model)}
        return _encode(body)

    def handler(self, call: StreamCall, output: StepOutput) -> EventHandler:
        """Per chunk: new text is a token; errors and blocks fail; a finishReason completes the reply.

        The rare parts: `thought: true` parts (reasoning), `functionCall` parts (whole calls, given an id when they
        come without), and a `thoughtSignature` on any part, kept with that part (on a later empty-text part it
        belongs to the text before it).
        """
        secrets = self.secrets
        fresh = NewText()
        emit = output.emit
        log = StepLog(self.name, call.model)
        text = log.text
        thinking = False  # a run of thought parts is open (text after it closes it)
        calls = False
        finish = "stop"

        def ended() -> StepEnd:
            return log.end(finish)

        output.finish = ended

        def rare(parts: list[_Part], batch: list[str]) -> None:
            """Parts other than one plain text part, in order."""
            nonlocal thinking, calls
            for part in parts:
                signature = part.thoughtSignature
                if part.thought:
                    if not thinking:
                        log.close_text()
                        thinking = True
                    if part.text:
                        emit(batch, ReasoningDelta(part.text))
                        log.thinking.append(part.text)
                    if signature:
                        log.close_thinking(log.state({"thoughtSignature": signature}))
                    continue
                if thinking:
                    log.close_thinking()
                    thinking = False
                function = part.functionCall
                if function is not None:
                    data = {"thoughtSignature": signature} if signature else {}
                    if function.id:
                        data["id"] = function.id
                    state = log.state(data) if data else None
                    args = _encode(function.args if function.args is not None else {}).decode()
                    tool_call = ToolCall(function.id or new_call_id(), function.name, args, state)
                    emit(batch, tool_call)
                    log.call(tool_call)
                    calls = True
                    continue
                if part.text:
                    new = fresh.take(part.text)
                    if new:
                        batch.append(new)
                        text.append(new)
                if signature:
                    log.close_text(log.state({"thoughtSignature": signature}))

        def handle(event: SSEEvent, batch: list[str]) -> int:
            nonlocal thinking, finish
            try:
                chunk = _decode_chunk(event.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return MORE
            if chunk.error is not None:
                raise UpstreamError(error_detail(chunk.error, secrets))
            if chunk.usageMetadata is not None:
                call.usage.input_tokens = chunk.usageMetadata.promptTokenCount
                call.usage.output_tokens = chunk.usageMetadata.candidatesTokenCount
            feedback = chunk.promptFeedback
            if feedback is not None and feedback.blockReason:
                detail = f"the prompt was blocked by the provider (blockReason {feedback.blockReason})"
                raise UpstreamError(detail, code=CONTENT_FILTERED)
            if not chunk.candidates:
                return MORE
            candidate = chunk.candidates[0]
            parts = candidate.content.parts if candidate.content is not None else None
            if parts:
                part = parts[0]
                if len(parts) == 1 and part.thoughtSignature is None and part.functionCall is None and not part.thought:
                    if thinking:
                        log.close_thinking()
                        thinking = False
                    if part.text:
                        new = fresh.take(part.text)
                        if new:
                            batch.append(new)
                            text.append(new)
                else:
                    rare(parts, batch)
            reason = candidate.finishReason
            if reason in FILTERED_FINISH_REASONS:
                detail = f"the reply was withheld by the provider (finishReason {reason})"
                raise UpstreamError(detail, code=CONTENT_FILTERED)
            if not reason or reason == "FINISH_REASON_UNSPECIFIED":
                return MORE
            finish = "tool-calls" if calls else _FINISH.get(reason, "other")
            return FINISHED

        return handle
