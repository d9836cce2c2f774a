"""How a turn ended, as values: the stream layer turns each into its last frame (frames.py), the engine never does."""

from __future__ import annotations

from dataclasses import dataclass

from ..providers.parts import Part
from .events import StepFinished

__all__ = ["Done", "Failed", "Outcome", "Stopped", "Unsaved"]


@dataclass(frozen=True, slots=True)
class Done:
    """The reply is complete and saved: its text, who made it (`provider:model`), its token usage.

    `parts` (every step's text, reasoning, tool calls and results, in order, opaque state included: the edge strips
    it) and `steps` are set by the engine for every reply (a plain one: its text as one part, one step). `content`
    is the visible text of every step joined, as the `token` frames carried it.
    """

    content: str
    provider: str
    usage: dict[str, int]
    conversation_id: str
    parts: tuple[Part, ...] | None = None
    steps: tuple[StepFinished, ...] | None = None


@dataclass(frozen=True, slots=True)
class Stopped(Done):
    """The user pressed Stop: the text so far, saved as stopped (its `done` frame says `"stopped": true`)."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The turn failed, or was ended by the server; the reply so far was saved, marked partial."""

    message: str
    code: str


@dataclass(frozen=True, slots=True)
class Unsaved(Failed):
    """The reply could not be saved: its conversation is gone, or the store went away meanwhile."""


Outcome = Done | Failed
