"""What a turn yields to the edge while it runs: token batches as ever, and, rarely, these events.

A turn's `events()` yields `list[str]` (visible text of any step: the hot path, one check per item) or one of the
values below; each dialect at the edge frames them its own way (`token`/`reasoning`/`tool_call`/`tool_result`/
`step` SSE frames for clients that opt in, docs/wire.md; the AI SDK's UI message stream chunks). The outcome
(`Done`) then carries the turn's ordered parts and its steps. Opaque provider state never appears here.

Order: a step's text batches, `ReasoningDelta`s and `ToolCallEvent`s as the model produced them, then its
`StepFinished`, then (when it called tools) one `ToolResultEvent` per call as each finishes, then the next step.
A `ReasoningDelta` (passed on from the provider as it is) belongs to the step after the last `StepFinished`.

Events come only when `TurnRequest.events` is non-empty (a dialect that always wants them, such as the AI SDK's,
asks for both kinds); otherwise `events()` yields token batches alone, and the edge's loop checks nothing per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..providers.events import ReasoningDelta

__all__ = ["ReasoningDelta", "StepFinished", "ToolCallEvent", "ToolResultEvent", "TurnEvent"]


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    """The model called a tool (arguments complete): the call's id, the tool's name, the decoded arguments.

    `args` is the decoded JSON (an object when valid); the raw text when it did not decode (then an
    `invalid_arguments` result follows).
    """

    step: int
    id: str
    name: str
    args: Any


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    """A tool call answered: its `output` (JSON), or `error` (`{"code","message"}`) with `is_error` true."""

    step: int
    id: str
    name: str
    output: Any
    error: dict[str, str] | None
    is_error: bool


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step ended: its index (0 first), finish reason (providers/events.FINISH_REASONS), and its token usage."""

    index: int
    finish_reason: str
    usage: dict[str, int]  # as `done.usage`: tokens, and inputTokens/outputTokens when reported


TurnEvent = ReasoningDelta | ToolCallEvent | ToolResultEvent | StepFinished
