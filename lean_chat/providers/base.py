"""The Provider protocol: a model's reply as an async iterator of token batches (and, rarely, events), plus usage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .events import ProviderEvent
    from .parts import Part

__all__ = [
    "ContextMessage",
    "MockKnobs",
    "MockToolCall",
    "Provider",
    "ProviderError",
    "ReasoningOptions",
    "StreamCall",
    "ToolSpec",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class ContextMessage:
    """One message of the context a provider sees; an assistant message of a tool turn also has its ordered parts.

    `parts` is None for plain messages (render `content`). When set (assistant messages only), it holds every step
    of that turn in order, tool results included, and `content` is the visible text of all of them (parts.py).
    """

    role: str
    content: str
    parts: tuple[Part, ...] | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the provider announces it: name, description, and the JSON Schema of its arguments (an object)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReasoningOptions:
    """`params.reasoning`: an effort (`low`, `medium`, `high`) and/or a token budget; each provider maps its knob."""

    effort: str | None = None
    budget_tokens: int | None = None


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
    reasoning: str = ""  # streamed as reasoning before the first step's text (params.mock.reasoning)
    tool_calls: tuple[MockToolCall, ...] = ()  # the first step calls these (params.mock.toolCalls)


@dataclass(frozen=True, slots=True)
class MockToolCall:
    """One tool call the mock makes in its first step: the tool's name and its arguments."""

    name: str
    args: Any  # a JSON value (an object, normally); sent to the engine as its JSON text


@dataclass(slots=True)
class StreamCall:
    """Everything a provider needs for one reply; it fills `usage` as the stream goes."""

    model: str
    messages: Sequence[ContextMessage]
    asked: str = ""  # the model as the client named it, trimmed ("" when none: the mock calls itself `mock`)
    mock: MockKnobs = MockKnobs()
    usage: Usage = field(default_factory=Usage)  # this step's usage (the engine gives each step a fresh one)
    tools: Sequence[ToolSpec] = ()  # the tools the model may call in this step (none: send no tool definitions)
    reasoning: ReasoningOptions | None = None  # None: the provider's default (no thinking asked for)
    step: int = 0  # the step's index in the turn (0 first); the transcript of earlier steps is in `messages`
    # Upstream requests made, and the error type of each one that failed (read by the metrics when the stream ends).
    attempts: int = 0
    failures: tuple[str, ...] = ()  # a tuple: most streams never fail, and an empty tuple is shared


class ProviderError(Exception):
    """A provider failed; `detail` is safe to show (no keys, no URLs with keys)."""

    def __init__(self, detail: str, *, code: str = "provider_error", retryable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.retryable = retryable


class ProviderStream(Protocol):
    """One step's stream of token batches and events: read with `async for`, closed with `aclose()` (an async
    generator is one)."""

    def __aiter__(self) -> AsyncIterator[list[str] | ProviderEvent]:
        """The stream itself."""
        ...

    def __anext__(self) -> Awaitable[list[str] | ProviderEvent]:
        """The next batch or event (StopAsyncIteration at the end)."""
        ...

    async def aclose(self) -> None:
        """Stop the stream early, releasing what it holds."""


class Provider(Protocol):
    """A source of streamed replies."""

    name: str

    def stream(self, call: StreamCall) -> ProviderStream:
        """Yield one step's tokens in batches (all parsed from one read form one batch), and its events (events.py)."""
        ...
