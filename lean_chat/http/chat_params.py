"""The body of `POST /chat/stream` read once into a TurnRequest: its loose `params` held to types and bounds."""

from __future__ import annotations

from typing import Any

from ..providers.base import MockKnobs
from ..store.base import StoredMessage, default_conversation_id
from ..turn.turn_request import TurnRequest
from .schema import ChatRequest

__all__ = ["mock_knobs", "turn_request"]


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
    )


def _trimmed(value: Any) -> str:
    """A string param trimmed; anything else ""."""
    return value.strip() if isinstance(value, str) else ""


def turn_request(request: ChatRequest, request_id: str | None) -> TurnRequest:
    """The turn a stream request asks for (`request_id`: the client's own id, if it sent one)."""
    params = request.params or {}
    return TurnRequest(
        user_id=request.userId,
        conversation_id=_trimmed(params.get("conversationId")) or default_conversation_id(request.userId),
        messages=[StoredMessage(m.role, m.content, m.meta) for m in request.messages],
        model=_trimmed(params.get("model")),
        resume=params.get("resume") is True,
        mock=mock_knobs(params.get("mock")),
        request_id=request_id,
    )
