"""What a tool may ask for besides its arguments: who called it, in which conversation, and whether to stop."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["ToolContext", "ToolError"]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Given to a tool that declares a parameter of this type (any name): the turn's user and conversation.

    `cancel_event` is set when the turn is stopped (Stop, the client gone, shutdown): an async tool is also
    cancelled where it awaits, a sync one (run in a thread) should check `cancelled` and return early.
    """

    user_id: str
    conversation_id: str
    tool_call_id: str
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        """True once the turn was stopped."""
        return self.cancel_event.is_set()


class ToolError(Exception):
    """Raised by a tool to give the model an error result whose message is this exception's text (code `tool_error`).

    Any other exception gives the model only its type's name; its traceback goes to the log.
    """
