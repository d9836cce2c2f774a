"""Kill tests' bookkeeping: what the client saw of each turn, and the tally of a run of SIGKILLs."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Tally", "TurnRecord"]


@dataclass
class TurnRecord:
    """What the client saw of one turn."""

    user_id: str
    conversation_id: str
    text: str
    started: bool = False
    done: str | None = None


@dataclass
class Tally:
    """Figures across all rounds."""

    kills: int = 0
    turns_started: int = 0
    turns_done: int = 0
    messages_checked: int = 0
    messages_lost: int = 0
    records: list[TurnRecord] = field(default_factory=list)

    def conclude(self, problems: list[str]) -> Tally:
        """Assert the final check found no problem and some turns ran; count the turns started and completed."""
        assert problems == [], problems[:5]
        self.turns_started = sum(r.started for r in self.records)
        self.turns_done = sum(r.done is not None for r in self.records)
        assert self.turns_started > 0 and self.messages_lost == 0
        return self
