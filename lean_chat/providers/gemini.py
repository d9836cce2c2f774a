"""Google Gemini streamGenerateContent, streamed as SSE (the key travels in a header, never in the URL)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from .base import StreamCall
from .http_provider import FINISHED, MORE, EventHandler, HTTPProvider
from .messages import split_system
from .retry import UpstreamError
from .sse_parser import SSEEvent
from .upstream import ErrorInfo, error_detail

__all__ = ["FILTERED_FINISH_REASONS", "GeminiProvider", "NewText"]

# Finish reasons that mean the reply was withheld by a content filter.
FILTERED_FINISH_REASONS = frozenset({"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"})
CONTENT_FILTERED = "content_filtered"


class _Part(msgspec.Struct, gc=False):
    text: str | None = None
    thought: bool | None = None


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
        contents = [{"role": "user" if m.role == "user" else "model", "parts": [{"text": m.content}]} for m in chat]
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return _encode(body)

    def handler(self, call: StreamCall) -> EventHandler:
        """Per chunk: new text is a token; errors and blocks fail; a finishReason completes the reply."""
        secrets = self.secrets
        fresh = NewText()

        def handle(event: SSEEvent, batch: list[str]) -> int:
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
                text = fresh.take("".join(p.text for p in parts if p.text and not p.thought))
                if text:
                    batch.append(text)
            reason = candidate.finishReason
            if reason in FILTERED_FINISH_REASONS:
                detail = f"the reply was withheld by the provider (finishReason {reason})"
                raise UpstreamError(detail, code=CONTENT_FILTERED)
            return FINISHED if reason and reason != "FINISH_REASON_UNSPECIFIED" else MORE

        return handle
