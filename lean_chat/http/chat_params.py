"""The body of `POST /chat/stream` read once into a TurnRequest: its loose `params` held to types and bounds."""

from __future__ import annotations

from typing import Any

from ..providers.base import MockKnobs, MockToolCall, ReasoningOptions
from ..providers.parts import strip_state
from ..store.base import StoredMessage, default_conversation_id
from ..turn.turn_request import TurnRequest
from .schema import ChatRequest

__all__ = ["event_kinds", "max_steps", "mock_knobs", "reasoning_options", "tool_names", "turn_request"]

EVENT_KINDS = frozenset(("reasoning", "tools"))
# One empty set for every plain stream (each `frozenset()` is a new 216-byte object, kept as long as its stream).
_NO_EVENTS: frozenset[str] = frozenset()
MAX_MOCK_TOOL_CALLS = 16
EFFORTS = frozenset(("minimal", "low", "medium", "high"))


def _number(value: Any, default: int) -> int:
    """An integer knob read leniently (numbers and numeric strings), else the default."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


def _clamp(value: int, low: int, high: int) -> int:
    """Value held inside [low, high]."""
    return max(low, min(high, value))


def mock_knobs(raw: Any) -> MockKnobs:
    """`params.mock` as the mock reads it: numbers read leniently and held in bounds; anything but an object is {}."""
    knobs: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return MockKnobs(
        target_chars=_clamp(_number(knobs.get("targetChars"), 1200), 250, 8000),
        include_prefix=bool(knobs.get("includePrefix", True)),
        token_delay_ms=_clamp(_number(knobs.get("tokenDelayMs"), 10), 0, 2000),
        jitter_ms=_clamp(_number(knobs.get("jitterMs"), 0), 0, 2000),
        reasoning=reasoning if isinstance(reasoning := knobs.get("reasoning"), str) else "",
        tool_calls=_mock_tool_calls(knobs.get("toolCalls")),
    )


def _mock_tool_calls(raw: Any) -> tuple[MockToolCall, ...]:
    """`params.mock.toolCalls`: the `{"name", "args"}` objects with a string name (at most 16); others skipped."""
    if not isinstance(raw, list):
        return ()
    calls = [
        MockToolCall(item["name"], item.get("args", {}))
        for item in raw
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    ]
    return tuple(calls[:MAX_MOCK_TOOL_CALLS])


def event_kinds(raw: Any) -> frozenset[str]:
    """`params.events`: the known kinds it lists ("reasoning", "tools"); anything else gives none."""
    if not isinstance(raw, list):
        return _NO_EVENTS
    return EVENT_KINDS.intersection(item for item in raw if isinstance(item, str)) or _NO_EVENTS


def tool_names(raw: Any) -> tuple[str, ...] | None:
    """`params.tools`: the names it lists (None when absent or not a list: every registered tool)."""
    if not isinstance(raw, list):
        return None
    return tuple(item for item in raw if isinstance(item, str))


def max_steps(raw: Any) -> int | None:
    """`params.maxSteps`: a whole number of at least 1, else None (the setting decides)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    value = _number(raw, 0)
    return value if value >= 1 else None


def reasoning_options(raw: Any) -> ReasoningOptions | None:
    """`params.reasoning`: `{"effort"}` (minimal, low, medium, high) and/or `{"budgetTokens"}` (from 1); else None."""
    if not isinstance(raw, dict):
        return None
    effort = raw.get("effort")
    effort = effort.strip().lower() if isinstance(effort, str) and effort.strip().lower() in EFFORTS else None
    budget = raw.get("budgetTokens")
    budget = _number(budget, 0) if budget is not None else 0
    if effort is None and budget < 1:
        return None
    return ReasoningOptions(effort, min(budget, 1_000_000) if budget >= 1 else None)


def _trimmed(value: Any) -> str:
    """A string param trimmed; anything else ""."""
    return value.strip() if isinstance(value, str) else ""


def turn_request(request: ChatRequest, request_id: str | None) -> TurnRequest:
    """The turn a stream request asks for (`request_id`: the client's own id, if it sent one)."""
    params = request.params or {}
    return TurnRequest(
        user_id=request.userId,
        conversation_id=_trimmed(params.get("conversationId")) or default_conversation_id(request.userId),
        # A client's `meta.parts` never carries provider state into the context (only the server's own may).
        messages=[StoredMessage(m.role, m.content, strip_state(m.meta)) for m in request.messages],
        model=_trimmed(params.get("model")),
        resume=params.get("resume") is True,
        mock=mock_knobs(params.get("mock")),
        request_id=request_id,
        events=event_kinds(params.get("events")),
        tools=tool_names(params.get("tools")),
        max_steps=max_steps(params.get("maxSteps")),
        reasoning=reasoning_options(params.get("reasoning")),
    )
