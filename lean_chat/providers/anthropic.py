"""Anthropic Messages, streamed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from .base import StreamCall
from .http_provider import DONE, MORE, EventHandler, HTTPProvider, HTTPProviderOptions
from .messages import split_system
from .retry import UpstreamError
from .sse_parser import SSEEvent
from .upstream import ErrorInfo, error_detail

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

__all__ = ["ANTHROPIC_VERSION", "MODEL_ALIASES", "AnthropicProvider"]

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
    """The fields of a streamed event we read."""

    type: str = ""
    message: _Message | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: ErrorInfo | str | None = None


_decode_event = msgspec.json.Decoder(_Event).decode
_encode = msgspec.json.Encoder().encode


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
        """The request body: system text apart, the conversation, the model's full name."""
        system, chat = split_system(call.messages)
        body: dict[str, Any] = {
            "model": MODEL_ALIASES.get(call.model, call.model),
            "max_tokens": self.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in chat],
            "stream": True,
        }
        if system:
            body["system"] = system
        return _encode(body)

    def handler(self, call: StreamCall) -> EventHandler:
        """Per event: text deltas are tokens, `message_stop` ends the stream, `event: error` fails."""
        secrets = self.secrets

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
                if delta is not None and delta.type == "text_delta" and delta.text:
                    batch.append(delta.text)
            elif kind == "message_start":
                usage = item.message.usage if item.message is not None else None
                if usage is not None and usage.input_tokens is not None:
                    call.usage.input_tokens = usage.input_tokens
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
            return MORE

        return handle
