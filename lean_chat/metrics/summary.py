"""What the metrics are told of a stream: the stream while it runs, and its summary once it ended."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["OpenStream", "StreamSummary"]


class _Routed(Protocol):
    """The turn of an open stream, as the metrics read it: the provider its model routed to, and the model."""

    @property
    def provider_asked(self) -> str: ...

    @property
    def model(self) -> str: ...


class OpenStream(Protocol):
    """A stream while it runs (its labels come from its turn)."""

    @property
    def turn(self) -> _Routed: ...


@dataclass(slots=True)
class StreamSummary:
    """One stream's facts, for metrics and the log line (the model is the name asked for, unchecked)."""

    provider: str
    model: str
    outcome: str
    code: str | None
    duration_seconds: float
    first_token_seconds: float | None
    output_tokens: int
    input_tokens: int | None
    served_by: str
    fell_back: bool
    attempts: int = 0
    failures: Sequence[str] = ()
    steps: int = 1  # steps the turn took (upstream requests that streamed)
    # Per tool call: (the tool's registered name, or "(unknown)"; "ok" or the error result's code; seconds).
    tool_calls: Sequence[tuple[str, str, float]] = ()
