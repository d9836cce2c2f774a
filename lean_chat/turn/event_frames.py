"""A turn's events as our dialect's opt-in frames (`reasoning`, `tool_call`, `tool_result`, `step`; docs/wire.md)."""

from __future__ import annotations

from typing import Any

from ..frames import event_frame
from ..providers.events import ReasoningDelta
from ..providers.parts import public_parts
from .events import StepFinished, ToolCallEvent, ToolResultEvent, TurnEvent
from .outcomes import Done

__all__ = ["EventFrames", "done_extras"]


def done_extras(outcome: Done) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`done.message.parts` (no opaque state) and `done.steps`, for a client that opted in."""
    parts = public_parts(outcome.parts or ())
    steps = [{"index": s.index, "finishReason": s.finish_reason, "usage": s.usage} for s in outcome.steps or ()]
    return parts, steps


class EventFrames:
    """The frames one client asked for (`params.events`); events it did not ask for give none."""

    __slots__ = ("any", "reasoning", "step", "tools")

    def __init__(self, kinds: frozenset[str]) -> None:
        self.reasoning = "reasoning" in kinds
        self.tools = "tools" in kinds
        self.any = bool(kinds)  # `step` frames, and `done` with parts and steps
        self.step = 0  # the step streaming now (reasoning deltas belong to it)

    def frame(self, event: TurnEvent) -> bytes | None:
        """The frame of one event, or None when this client did not opt in to its kind."""
        if isinstance(event, ReasoningDelta):
            if not self.reasoning or not event.text:
                return None
            return event_frame(b"reasoning", {"type": "reasoning", "step": self.step, "delta": event.text})
        if isinstance(event, ToolCallEvent):
            if not self.tools:
                return None
            data = {"type": "tool_call", "step": event.step, "id": event.id, "name": event.name, "args": event.args}
            return event_frame(b"tool_call", data)
        if isinstance(event, ToolResultEvent):
            if not self.tools:
                return None
            result: dict[str, Any] = {"type": "tool_result", "step": event.step, "id": event.id, "name": event.name}
            if event.is_error:
                result["error"] = event.error
            else:
                result["output"] = event.output
            result["isError"] = event.is_error
            return event_frame(b"tool_result", result)
        if isinstance(event, StepFinished):
            self.step = event.index + 1
            if not self.any:
                return None
            data = {"type": "step", "index": event.index, "finishReason": event.finish_reason, "usage": event.usage}
            return event_frame(b"step", data)
        return None
