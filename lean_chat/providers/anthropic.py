"""Anthropic Messages, streamed."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import httpx
import msgspec

from .base import StreamCall
from .messages import split_system
from .retry import RetryPolicy, UpstreamError, with_retries
from .upstream import ErrorInfo, UpstreamStream, error_detail

__all__ = ["ANTHROPIC_VERSION", "MODEL_ALIASES", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"

# Short names the reference accepts, mapped to the provider's name for that model.
MODEL_ALIASES = {
    "claude-3.5-sonnet": "claude-3-5-sonnet-latest",
    "claude-3-5-sonnet": "claude-3-5-sonnet-latest",
}

# Mid-stream errors worth another attempt while nothing has been sent yet.
_RETRY_ERROR_TYPES = frozenset({"overloaded_error", "api_error"})


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None


class _Message(msgspec.Struct):
    usage: _Usage | None = None


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None


class _Event(msgspec.Struct):
    """The fields of a streamed event we read."""

    type: str = ""
    message: _Message | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: ErrorInfo | str | None = None


_decode_event = msgspec.json.Decoder(_Event).decode
_encode = msgspec.json.Encoder().encode


class AnthropicProvider:
    """Streams `POST {base}/messages` with `stream: true`."""

    name = "anthropic"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        policy: RetryPolicy,
        max_tokens: int = 1024,
        request_timeout: float = 600.0,
    ) -> None:
        self.client = client
        self.api_key = api_key.strip()
        self.url = base_url.rstrip("/") + "/messages"
        self.policy = policy
        self.max_tokens = max_tokens
        self.request_timeout = request_timeout
        self.headers = {
            "x-api-key": self.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }

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

    def stream(self, call: StreamCall) -> AsyncGenerator[list[str], None]:
        """The reply's token batches, retried before the first token."""
        body = self.body(call)
        return with_retries(self.name, self.policy, lambda: self._attempt(call, body))

    async def _attempt(self, call: StreamCall, body: bytes) -> AsyncGenerator[list[str], None]:
        """One request: text deltas per network read; `event: error` or a truncated stream raises."""
        try:
            request = self.client.build_request("POST", self.url, headers=self.headers, content=body)
        except httpx.InvalidURL:
            raise UpstreamError("the configured base URL is not valid") from None
        stopped = False
        secrets = (self.api_key,)
        async with UpstreamStream(self.client, request, secrets, self.request_timeout) as upstream:
            async with aclosing(upstream.reads()) as reads:
                async for events in reads:
                    batch: list[str] = []
                    failure: UpstreamError | None = None
                    for event in events:
                        if event.event == "ping":
                            continue
                        try:
                            item = _decode_event(event.data)
                        except (msgspec.DecodeError, msgspec.ValidationError):
                            continue
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
                            stopped = True
                            break
                        elif kind == "error":
                            info = item.error or "unknown error"
                            retry = not isinstance(info, str) and info.type in _RETRY_ERROR_TYPES
                            failure = UpstreamError(error_detail(info, secrets), retryable=retry)
                            break
                    if batch:
                        yield batch
                    if failure is not None:
                        raise failure
                    if stopped:
                        break
            if stopped:
                await upstream.drain()
        if not stopped:
            raise UpstreamError("the stream ended before the reply was complete (no message_stop)", retryable=True)
