"""What one upstream attempt yields besides token batches: its events in stream order, and its end (a StepEnd).

A provider's event handler appends visible text to the read's batch, as it always did (the hot path). The rare
events (reasoning, a complete tool call) go through `emit`, which first moves the batch's text ahead of the event,
so the order of the upstream stream is kept. A provider whose steps may carry opaque state to replay (Anthropic's
thinking, Gemini's thought signatures) logs the step's parts (`StepLog`); they reach `StepEnd.parts` only when some
part does carry state, otherwise the engine builds the same parts from what streamed and `StepEnd.parts` is None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ..random_ids import random_hex
from .events import ProviderEvent, ReasoningDelta, StepEnd, ToolCall
from .parts import Part, ProviderState, ReasoningPart, TextPart, ToolCallPart

__all__ = ["StepLog", "StepOutput", "is_whole_json", "new_call_id"]

_decode = msgspec.json.decode


def is_whole_json(args: str) -> bool:
    """True when a tool call's arguments are complete JSON text (or nothing)."""
    if not args.strip():
        return True
    try:
        msgspec.json.decode(args)
    except msgspec.DecodeError:
        return False
    return True


def new_call_id(prefix: str = "call_") -> str:
    """An id for a tool call the upstream sent without one."""
    return prefix + random_hex(12)


def _args(args_json: str) -> Any:
    """A call's arguments as decoded JSON ("" is `{}`), else the raw text."""
    if not args_json.strip():
        return {}
    try:
        return _decode(args_json)
    except msgspec.DecodeError:
        return args_json


class StepOutput:
    """One attempt's yield besides token batches: `items` in order (batches moved ahead of events), and the end."""

    __slots__ = ("finish", "items")

    def __init__(self) -> None:
        self.items: list[list[str] | ProviderEvent] = []
        # Called once the attempt's stream ended well: the step's end (set by the provider's handler).
        self.finish: Callable[[], StepEnd] = _plain_end

    def emit(self, batch: list[str], event: ProviderEvent) -> None:
        """Queue an event after the text parsed before it (consecutive reasoning deltas of one read join)."""
        items = self.items
        if batch:
            items.append(batch[:])
            batch.clear()
        elif type(event) is ReasoningDelta and items:
            last = items[-1]
            if type(last) is ReasoningDelta:
                items[-1] = ReasoningDelta(last.text + event.text)
                return
        items.append(event)


def _plain_end() -> StepEnd:
    """The end of a step that streamed only text and said nothing more."""
    return StepEnd("stop")


class StepLog:
    """A step's parts in order, with their opaque state, for a provider whose step carries state to replay."""

    __slots__ = ("model", "parts", "provider", "stateful", "text", "thinking")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.parts: list[Part] = []
        self.text: list[str] = []  # the text run open now (a handler may hold it and append to it)
        self.thinking: list[str] = []  # the reasoning run open now
        self.stateful = False  # some part carries state (else the engine's own parts are as good)

    def state(self, data: dict[str, Any]) -> ProviderState:
        """Opaque state of this provider and model."""
        self.stateful = True
        return ProviderState(self.provider, self.model, data)

    def close_text(self, state: ProviderState | None = None) -> None:
        """End the text run (with the state that came with it, if any); `text` stays the same list, emptied."""
        if self.text or state is not None:
            self.parts.append(TextPart("".join(self.text), state))
            self.text.clear()

    def close_thinking(self, state: ProviderState | None = None) -> None:
        """End the reasoning run (with its state, if any)."""
        if self.thinking or state is not None:
            self.parts.append(ReasoningPart("".join(self.thinking), state))
            self.thinking = []

    def call(self, call: ToolCall) -> None:
        """A complete tool call, after the runs before it."""
        self.close_thinking()
        self.close_text()
        self.parts.append(ToolCallPart(call.id, call.name, _args(call.args_json), call.state))

    def end(self, finish_reason: str) -> StepEnd:
        """The step's end: its parts when they carry state, else None (the engine builds the same parts)."""
        self.close_thinking()
        self.close_text()
        return StepEnd(finish_reason, tuple(self.parts) if self.stateful else None)
