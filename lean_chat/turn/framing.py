"""How a stream's bytes are made from what the engine produces: each dialect at the HTTP edge brings a Framer.

The engine hands a Framer its token batches, its events (turn/events.py) and its outcome, and writes whatever
bytes come back; it never knows which dialect it serves. Kept streams (resume) are kept in one format,
`KeptFrames` (the `token`/`done`/`error` frames with `id:` lines, which the hub reads back to rebuild a reply); a
dialect that speaks another one turns what a reader reads into its own bytes with a Reframer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..frames import done_frame, error_frame, token_frames
from .event_frames import EventFrames, done_extras
from .events import TurnEvent
from .outcomes import Done, Outcome, Stopped

__all__ = ["Framer", "KeptFrames", "Reframer", "outcome_frame"]


class Framer(Protocol):
    """The bytes of one stream, made from its token batches and, last, its outcome."""

    def tokens(self, batch: Sequence[str]) -> bytes:
        """The bytes that carry one batch of tokens (one write)."""
        ...

    def event(self, item: TurnEvent) -> bytes:
        """The bytes of one engine event (reasoning, a tool call or result, a step's end); b"": not shown."""
        ...

    def outcome(self, outcome: Outcome, request_id: str | None) -> bytes:
        """The stream's last bytes, for a turn that ended so (`request_id`: the client's own, for errors)."""
        ...


class Reframer(Protocol):
    """Turns kept frames (KeptFrames', read back from the hub by one reader) into a dialect's bytes, in order."""

    def __call__(self, kept: bytes) -> bytes:
        """The dialect's bytes for these kept frames (whole frames, as a reader reads them)."""
        ...


def outcome_frame(outcome: Outcome, request_id: str | None, with_parts: bool = False) -> bytes:
    """The last frame of a turn that ended so: `done` (saying `stopped` after Stop), else `error` naming the request.

    `with_parts`: the client opted in to events, so `done` carries `message.parts` and `steps`.
    """
    if isinstance(outcome, Done):
        stopped = isinstance(outcome, Stopped)
        if with_parts:
            parts, steps = done_extras(outcome)
            return done_frame(
                outcome.content, outcome.provider, outcome.usage, outcome.conversation_id, stopped, parts, steps
            )
        return done_frame(outcome.content, outcome.provider, outcome.usage, outcome.conversation_id, stopped)
    return error_frame(outcome.message, outcome.code, request_id)


class KeptFrames:
    """The `/chat/stream` dialect, and the format streams are kept in: `token`/`done`/`error` frames (frames.py),
    and the event frames a client opted in to (`params.events`, event_frames.py)."""

    __slots__ = ("events",)

    def __init__(self, kinds: frozenset[str] = frozenset()) -> None:
        self.events = EventFrames(kinds)

    # `token` frames, one per token: the function itself (no method of ours between: one call less per batch).
    tokens = staticmethod(token_frames)

    def event(self, item: TurnEvent) -> bytes:
        """The event's frame, when the client opted in to its kind."""
        return self.events.frame(item) or b""

    def outcome(self, outcome: Outcome, request_id: str | None) -> bytes:
        """`done` (with the parts and steps for a client that opted in) or `error`."""
        return outcome_frame(outcome, request_id, self.events.any)
