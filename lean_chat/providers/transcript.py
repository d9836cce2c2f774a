"""An assistant message's parts cut into the steps a provider replays: what the model said, then the results.

Every provider rebuilds its own request format from these steps (openai.py, anthropic.py, gemini.py). The cut
keeps the transcript valid whatever was stored: a call without a result gets a `cancelled` error result, a result
that answers no call of its step is left out, and opaque state is kept only for the provider and model that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .parts import Part, ProviderState, ToolCallPart, ToolResultPart

__all__ = ["Step", "own_state", "result_text", "steps_of"]

_encode = msgspec.json.encode
_MISSING = {"code": "cancelled", "message": "the call has no result (the turn ended before it finished)"}


@dataclass(slots=True)
class Step:
    """One step of a stored turn: the model's parts (text, reasoning, calls), then the results of its calls."""

    said: list[Part] = field(default_factory=list)
    results: list[ToolResultPart] = field(default_factory=list)

    @property
    def calls(self) -> list[ToolCallPart]:
        """The step's tool calls, in order."""
        return [p for p in self.said if type(p) is ToolCallPart]


def steps_of(parts: Sequence[Part]) -> list[Step]:
    """The steps of a turn's parts; each call answered once, in the order of the calls."""
    steps: list[Step] = []
    current = Step()
    answered: list[ToolResultPart] = []
    for part in parts:
        if type(part) is ToolResultPart:
            answered.append(part)
            continue
        if answered:
            steps.append(_answered(current, answered))
            current, answered = Step(), []
        current.said.append(part)
    if current.said or answered:
        steps.append(_answered(current, answered))
    return [s for s in steps if s.said]


def _answered(step: Step, results: list[ToolResultPart]) -> Step:
    """The step with exactly one result per call, in call order (missing ones `cancelled`, strays dropped)."""
    by_id: dict[str, ToolResultPart] = {}
    for result in results:
        by_id.setdefault(result.id, result)
    for call in step.calls:
        if call.id in by_id:
            step.results.append(by_id[call.id])
        else:
            step.results.append(ToolResultPart(call.id, call.name, error=_MISSING, isError=True))
    return step


def own_state(state: ProviderState | None, provider: str, model: str) -> dict[str, Any] | None:
    """The state's data when this provider and model made it, else None (state is replayed only to its maker)."""
    if state is None or state.provider != provider or state.model != model:
        return None
    return state.data


def result_text(result: ToolResultPart) -> str:
    """A result as the text a model reads: the output (a string as it is, else its JSON), or the error's JSON."""
    if result.isError:
        return _encode({"error": result.error or {}}).decode()
    if isinstance(result.output, str):
        return result.output
    return _encode(result.output).decode()
