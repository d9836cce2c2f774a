"""OpenAI chat completions, streamed (and any OpenAI-compatible server: vLLM, Ollama, LM Studio)."""

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

__all__ = ["OpenAIProvider"]


class _Delta(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Chunk(msgspec.Struct):
    """The fields of a `chat.completion.chunk` we read (or a vLLM error object)."""

    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: ErrorInfo | str | None = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_encode = msgspec.json.Encoder().encode
_DONE = b"[DONE]"


class OpenAIProvider:
    """Streams `POST {base}/chat/completions` with `stream: true`."""

    name = "openai"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        policy: RetryPolicy,
        include_usage: bool = True,
        request_timeout: float = 600.0,
    ) -> None:
        self.client = client
        self.api_key = api_key.strip()
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.policy = policy
        self.include_usage = include_usage
        self.request_timeout = request_timeout
        self.headers = {"authorization": f"Bearer {self.api_key}", "content-type": "application/json"}

    def body(self, call: StreamCall) -> bytes:
        """The request body: system text first, then the conversation."""
        system, chat = split_system(call.messages)
        messages = [{"role": "system", "content": system}] if system else []
        messages.extend({"role": m.role, "content": m.content} for m in chat)
        body: dict[str, Any] = {"model": call.model, "messages": messages, "stream": True}
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        return _encode(body)

    def stream(self, call: StreamCall) -> AsyncGenerator[list[str], None]:
        """The reply's token batches, retried before the first token."""
        body = self.body(call)
        return with_retries(self.name, self.policy, lambda: self._attempt(call, body))

    async def _attempt(self, call: StreamCall, body: bytes) -> AsyncGenerator[list[str], None]:
        """One request: tokens per network read; an error object or a truncated stream raises."""
        try:
            request = self.client.build_request("POST", self.url, headers=self.headers, content=body)
        except httpx.InvalidURL:
            raise UpstreamError("the configured base URL is not valid") from None
        finished = done = False
        secrets = (self.api_key,)
        async with UpstreamStream(self.client, request, secrets, self.request_timeout) as upstream:
            async with aclosing(upstream.reads()) as reads:
                async for events in reads:
                    batch: list[str] = []
                    failure: UpstreamError | None = None
                    for event in events:
                        if event.data == _DONE:
                            done = True
                            break
                        try:
                            chunk = _decode_chunk(event.data)
                        except (msgspec.DecodeError, msgspec.ValidationError):
                            continue
                        if chunk.error is not None:
                            failure = UpstreamError(error_detail(chunk.error, secrets))
                            break
                        if chunk.usage is not None:
                            call.usage.input_tokens = chunk.usage.prompt_tokens
                            call.usage.output_tokens = chunk.usage.completion_tokens
                        if chunk.choices:
                            choice = chunk.choices[0]
                            delta = choice.delta
                            if delta is not None:
                                if delta.content:
                                    batch.append(delta.content)
                                if delta.refusal:
                                    batch.append(delta.refusal)
                            if choice.finish_reason:
                                finished = True
                    if batch:
                        yield batch
                    if failure is not None:
                        raise failure
                    if done:
                        break
            if done:
                await upstream.drain()
        if not (finished or done):
            raise UpstreamError(
                "the stream ended before the reply was complete (no finish_reason or [DONE])", retryable=True
            )
