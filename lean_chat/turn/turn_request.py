"""What the engine is asked for one turn: made once at the HTTP edge from the request, then only read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..providers.base import MockKnobs, ReasoningOptions
from ..store.base import StoredMessage

__all__ = ["TurnRequest"]


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """One turn as asked: who, into which conversation, with which model, and how (the wire body never goes further)."""

    user_id: str
    conversation_id: str  # resolved: the one named, trimmed, else the user's default
    messages: Sequence[StoredMessage]  # the new messages, as the store keeps them (the turn keeps none: `opened`)
    model: str = ""  # as asked, trimmed ("" when none was named: the service's default answers)
    resume: bool = False  # produced apart from the connection, its frames kept for resume (docs/resume.md)
    mock: MockKnobs = MockKnobs()
    request_id: str | None = None  # the client's own request id, which its `error` frames carry
    reply_id: str | None = None  # the id the reply is saved under (`meta.id`), when the client's messages have ids
    # params.events: the opt-in event kinds ("reasoning", "tools"); empty: the engine yields token batches only (the
    # tools still run), and our dialect writes today's token/done/error stream.
    events: frozenset[str] = frozenset()
    tools: tuple[str, ...] | None = None  # params.tools: the registered tools this turn may use (None: all of them)
    max_steps: int | None = None  # params.maxSteps: lower than the service's max_steps only (None: the setting)
    reasoning: ReasoningOptions | None = None  # params.reasoning, held to types

    def opened(self) -> TurnRequest:
        """The request once its messages are stored: without them (a client that resends the whole conversation
        would otherwise keep it in memory for as long as the reply streams)."""
        return replace(self, messages=()) if self.messages else self
