"""What a provider yields besides its token batches: reasoning, complete tool calls, and the end of a step.

A provider's stream yields `list[str]` for visible text (the hot path, unchanged: one list per parsed read) and,
rarely, one of these values; the engine tells them apart with a single `type(item) is list` per item. A provider
that never yields them streams plain text as before: its step ends with finish reason `stop` and one text part.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Usage
from .parts import Part, ProviderState

__all__ = ["FINISH_REASONS", "ProviderEvent", "ReasoningDelta", "StepEnd", "ToolCall"]

# The finish reasons a step may end with (the AI SDK's names; providers map their own onto these).
FINISH_REASONS = ("stop", "length", "tool-calls", "content-filter", "error", "other")


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """More of the model's reasoning text, as it streams (never persisted unless its step completes)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call, yielded once its arguments are complete: id ("" when the upstream gave none), name, raw JSON.

    `args_json` is the arguments' text exactly as the model sent it ("" is read as `{}`); the engine decodes and
    validates it. The engine gives a call without an id (or with one already used in the turn) an id of its own.
    """

    id: str
    name: str
    args_json: str
    state: ProviderState | None = None  # e.g. Gemini's thoughtSignature on the functionCall part


@dataclass(frozen=True, slots=True)
class StepEnd:
    """The end of one step (one upstream request), yielded last by a provider that knows its step's shape.

    `parts` is the step's ordered parts as they must be replayed (text, reasoning with its opaque state, tool calls
    as yielded); None lets the engine build them from what was streamed (text runs and tool calls, no reasoning
    state). `usage` is this step's usage (None: the engine reads `StreamCall.usage`).
    """

    finish_reason: str  # one of FINISH_REASONS
    parts: tuple[Part, ...] | None = None
    usage: Usage | None = None


ProviderEvent = ReasoningDelta | ToolCall | StepEnd
