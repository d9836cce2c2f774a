"""Kill tests' bookkeeping: what the client saw of each turn, and the tally of a run of SIGKILLs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Tally", "TurnRecord", "verify"]


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


def verify(
    records: list[TurnRecord], rows: dict[str, list[tuple[str, str, Any]]], tally: Tally, *, reply_right_after: bool
) -> list[str]:
    """Compare what clients saw with what is stored (`rows`: conversation id -> (role, content, meta) in order);
    return the problems found.

    Every started turn's user message is stored once, and a reply whose `done` was seen is stored whole after it:
    right after it when the conversation's turns ran one at a time (`reply_right_after`), anywhere after it when
    some ran together.
    """
    problems: list[str] = []
    for record in records:
        if not record.started:
            continue
        stored = rows.get(record.conversation_id, [])
        asked = ("user", record.text, None)
        tally.messages_checked += 1 + (record.done is not None)
        if asked not in stored:
            tally.messages_lost += 1 + (record.done is not None)
            problems.append(f"user message lost: {record.text!r}")
            continue
        if stored.count(asked) > 1:
            problems.append(f"user message duplicated: {record.text!r}")
        if record.done is None:
            continue
        after = stored.index(asked) + 1
        reply = ("assistant", record.done, None)
        found = stored[after : after + 1] == [reply] if reply_right_after else reply in stored[after:]
        if not found:
            tally.messages_lost += 1
            problems.append(f"complete reply lost after {record.text!r}")
    return problems
