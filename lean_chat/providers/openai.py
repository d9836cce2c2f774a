"""OpenAI chat completions, streamed (and any OpenAI-compatible server: vLLM, Ollama, LM Studio)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from .base import StreamCall
from .http_provider import DONE, FINISHED, MORE, EventHandler, HTTPProvider, HTTPProviderOptions
from .messages import split_system
from .retry import UpstreamError
from .sse_parser import SSEEvent
from .upstream import ErrorInfo, error_detail

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

__all__ = ["OpenAIProvider"]


# gc=False: decoded chunks hold no cycles, so the collector need not track (and walk) them.
class _Delta(msgspec.Struct, gc=False):
    content: str | None = None
    refusal: str | None = None


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
        """The request body: system text first, then the conversation."""
        system, chat = split_system(call.messages)
        messages = [{"role": "system", "content": system}] if system else []
        messages.extend({"role": m.role, "content": m.content} for m in chat)
        body: dict[str, Any] = {"model": call.model, "messages": messages, "stream": True}
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        return _encode(body)

    def handler(self, call: StreamCall) -> EventHandler:
        """Per event: `[DONE]` ends the stream, an error object fails, deltas and refusals are tokens."""
        secrets = self.secrets

        def handle(event: SSEEvent, batch: list[str]) -> int:
            if event.data == _DONE:
                return DONE
            try:
                chunk = _decode_chunk(event.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return MORE
            if chunk.error is not None:
                raise UpstreamError(error_detail(chunk.error, secrets))
            if chunk.usage is not None:
                call.usage.input_tokens = chunk.usage.prompt_tokens
                call.usage.output_tokens = chunk.usage.completion_tokens
            if not chunk.choices:
                return MORE
            choice = chunk.choices[0]
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    batch.append(delta.content)
                if delta.refusal:
                    batch.append(delta.refusal)
            return FINISHED if choice.finish_reason else MORE

        return handle
