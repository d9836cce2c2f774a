"""What one finished stream was: provider, model, outcome, timings and tokens, read once when it ends.

The metrics and the JSON log line both read this summary; nothing here runs per token.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from ..metrics.summary import StreamSummary
from .chat import estimated_tokens

if TYPE_CHECKING:
    import enum

    from .chat import Turn

__all__ = ["EndedStream", "summarize"]

# TurnStream's end reasons, as the metrics name them.
_OUTCOMES = {
    "done": "done",
    "error": "error",
    "client_gone": "client_gone",
    "stalled": "stalled_client",
    "stopped": "stopped",
    "user_stop": "stopped",
}


class EndedStream(Protocol):
    """What a summary reads of a stream: its turn, why it ended, and its `error` frame's code if one ended it."""

    @property
    def turn(self) -> Turn: ...

    @property
    def end(self) -> enum.Enum | None: ...

    @property
    def error_code(self) -> str | None: ...


def summarize(stream: EndedStream, started: float) -> StreamSummary:
    """The summary of a stream that has ended (`started`: `time.perf_counter()` when the request came in)."""
    turn = stream.turn
    now = time.perf_counter()
    end = stream.end
    outcome = _OUTCOMES.get(end.value, "error") if end is not None else "error"
    code = (stream.error_code or "internal_error") if outcome == "error" else None
    routed = turn.provider_asked
    input_tokens, output = turn.reported_usage()
    first = turn.first_token_at
    sent = turn.started or outcome in ("done", "stopped")
    return StreamSummary(
        provider=routed,
        model=turn.model,
        outcome=outcome,
        code=code,
        duration_seconds=now - started,
        first_token_seconds=None if first is None else first - started,
        # As the `done` frame counts them (a stream that produced nothing and sent no `done` counts none).
        output_tokens=output if output is not None else estimated_tokens(turn.content) if sent else 0,
        input_tokens=input_tokens,
        served_by=turn.provider_name,
        fell_back=routed != "mock" and turn.provider_name == "mock" and turn.call.attempts > 0,
        attempts=turn.attempts,
        failures=turn.failures,
        steps=max(1, len(turn.steps)),
        tool_calls=turn.tool_records,
    )
