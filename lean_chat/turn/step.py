"""The step being streamed: its text runs, reasoning and tool calls in order, made into the step's parts at its end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from ..providers.events import ProviderEvent, ReasoningDelta, StepEnd, ToolCall
from ..providers.parts import Part, ReasoningPart, TextPart, ToolCallPart
from .events import ToolCallEvent

__all__ = ["StepParts", "decode_args"]

_decode = msgspec.json.decode


def decode_args(args_json: str) -> Any:
    """A tool call's arguments as the model sent them: the decoded JSON ("" is `{}`), else the raw text itself."""
    text = args_json.strip()
    if not text:
        return {}
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return args_json


class ReplyMarks(Protocol):
    """What a step needs of its turn: the reply's length in bytes now, and the id a tool call gets."""

    def reply_mark(self) -> int:
        """The reply's length in bytes now (its pending text flushed first)."""

    def call_id(self, proposed: str) -> str:
        """A tool call's id in the turn: its own, unless missing or used already."""


_NO_CALLS: list[ToolCallPart] = []  # shared by every step without calls (never appended to: see `take`)


class StepParts:
    """One step's parts as they stream, marked in its turn's reply.

    Text is not copied here: a run of text is a pair of offsets into the turn's reply buffer, closed when an event
    comes (events are rare: the token path stays as it was). A plain step (no event) holds no list and no bound
    method: every open stream keeps its step.
    """

    __slots__ = ("_reasoning", "_runs", "_text_from", "_turn", "calls", "end", "first", "index")

    def __init__(self, index: int, turn: ReplyMarks) -> None:
        self.index = index
        self._turn = turn
        self._text_from = self.first = turn.reply_mark()  # where the step's text begins in the reply (bytes)
        # In order: (start, end) byte offsets of text, a list of reasoning deltas, or a tool call (made at the first).
        self._runs: list[tuple[int, int] | list[str] | ToolCallPart] | None = None
        self._reasoning: list[str] | None = None  # the reasoning run open now
        self.calls = _NO_CALLS  # its own list from the first call
        self.end: StepEnd | None = None

    def _close_text(self) -> list[tuple[int, int] | list[str] | ToolCallPart]:
        """End the run of text streamed since the last event (if any); the runs so far."""
        runs = self._runs
        if runs is None:
            runs = self._runs = []
        now = self._turn.reply_mark()
        if now > self._text_from:
            runs.append((self._text_from, now))
            self._reasoning = None
        self._text_from = now
        return runs

    def take(self, event: ProviderEvent) -> ReasoningDelta | ToolCallEvent | None:
        """Record a provider event; what the turn passes on (None for the step's end)."""
        if isinstance(event, ReasoningDelta):
            runs = self._close_text()
            if self._reasoning is None:
                self._reasoning = []
                runs.append(self._reasoning)
            self._reasoning.append(event.text)
            return event
        if isinstance(event, ToolCall):
            runs = self._close_text()
            self._reasoning = None
            call = ToolCallPart(self._turn.call_id(event.id), event.name, decode_args(event.args_json), event.state)
            runs.append(call)
            if self.calls is _NO_CALLS:
                self.calls = []
            self.calls.append(call)
            return ToolCallEvent(self.index, call.id, call.name, call.args)
        self._close_text()
        self.end = event
        return None

    @property
    def evented(self) -> bool:
        """True when the provider yielded any event in this step (else it is plain text)."""
        return bool(self._runs) or self.end is not None

    def _built(self, text_of: Callable[[int, int], str], reasoning: bool) -> list[Part]:
        """The parts from what streamed (reasoning kept only when `reasoning`: a complete step)."""
        parts: list[Part] = []
        for run in self._close_text():
            if isinstance(run, tuple):
                parts.append(TextPart(text_of(*run)))
            elif isinstance(run, list):
                if reasoning:
                    parts.append(ReasoningPart("".join(run)))
            else:
                parts.append(run)
        return parts

    def complete(self, text_of: Callable[[int, int], str]) -> list[Part]:
        """The finished step's parts: the provider's own (its tool calls as the engine named them), else built."""
        if self.end is None or self.end.parts is None:
            return self._built(text_of, reasoning=True)
        self._close_text()
        ours = iter(self.calls)
        parts: list[Part] = []
        for part in self.end.parts:
            if isinstance(part, ToolCallPart):
                mine = next(ours, None)
                if mine is None:  # a call the provider never yielded: not run, so not kept
                    continue
                parts.append(ToolCallPart(mine.id, mine.name, mine.args, part.state or mine.state))
            else:
                parts.append(part)
        parts.extend(ours)  # calls yielded but missing from the provider's parts
        return parts

    def partial(self, text_of: Callable[[int, int], str]) -> list[Part]:
        """The parts of a step cut short: its text and complete tool calls; its reasoning is not kept."""
        return self._built(text_of, reasoning=False)
