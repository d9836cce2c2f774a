"""The Provider protocol: a model's reply as an async iterator of token batches, plus usage."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["ContextMessage", "MockKnobs", "Provider", "ProviderError", "StreamCall", "Usage"]


@dataclass(frozen=True, slots=True)
class ContextMessage:
    """One message of the context a provider sees."""

    role: str
    content: str


@dataclass(slots=True)
class Usage:
    """Token counts a provider reported; None where it reported nothing."""

    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class MockKnobs:
    """How the mock provider writes and paces its reply (held in bounds where the request is read)."""

    target_chars: int = 1200  # the reply's length, about (250 to 8000)
    include_prefix: bool = True  # the reply starts with "Mock reply (model): prompt"
    token_delay_ms: int = 10  # the pause before each token (0 to 2000)
    jitter_ms: int = 0  # a random extra pause of up to this much (0 to 2000)


@dataclass(slots=True)
class StreamCall:
    """Everything a provider needs for one reply; it fills `usage` as the stream goes."""

    model: str
    messages: Sequence[ContextMessage]
    asked: str = ""  # the model as the client named it, trimmed ("" when none: the mock calls itself `mock`)
    mock: MockKnobs = MockKnobs()
    usage: Usage = field(default_factory=Usage)
    # Upstream requests made, and the error type of each one that failed (read by the metrics when the stream ends).
    attempts: int = 0
    failures: list[str] = field(default_factory=list)


class ProviderError(Exception):
    """A provider failed; `detail` is safe to show (no keys, no URLs with keys)."""

    def __init__(self, detail: str, *, code: str = "provider_error", retryable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.retryable = retryable


class Provider(Protocol):
    """A source of streamed replies."""

    name: str

    def stream(self, call: StreamCall) -> AsyncGenerator[list[str], None]:
        """Yield the reply's tokens in batches (all tokens parsed from one read form one batch)."""
        ...
