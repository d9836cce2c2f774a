"""The history rules every store shares: the merge of stored and incoming messages, titles, the context cap."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .base import StoredMessage

__all__ = ["NEW_CHAT", "cap_context", "is_prefix", "merge_history", "title_for"]

NEW_CHAT = "New chat"


def title_for(messages: Iterable[StoredMessage]) -> str:
    """A conversation's title: its first user message on one line, cut to 60 characters."""
    first = next((m.content.strip() for m in messages if m.role == "user"), "")
    if not first:
        return NEW_CHAT
    line = first.replace("\n", " ").strip()
    return line[:60] + "…" if len(line) > 60 else line


def same(a: StoredMessage, b: StoredMessage) -> bool:
    """True when two messages match for the merge rule (same role and content)."""
    return a.role == b.role and a.content == b.content


def is_prefix(stored: Sequence[StoredMessage], incoming: Sequence[StoredMessage]) -> bool:
    """True when `stored` is non-empty and a prefix of `incoming`, pairwise by role and content."""
    return bool(stored) and len(stored) <= len(incoming) and all(map(same, stored, incoming))


def merge_history(
    stored: list[StoredMessage], incoming: list[StoredMessage]
) -> tuple[list[StoredMessage], list[StoredMessage]]:
    """(context, new): the incoming list when the stored one is its prefix, else stored + incoming."""
    if is_prefix(stored, incoming):
        return incoming, incoming[len(stored) :]
    return stored + incoming, incoming


def cap_context(messages: Sequence[StoredMessage], max_chars: int) -> list[StoredMessage]:
    """The newest messages within `max_chars` characters, every system message kept, the newest always.

    System messages count first; then messages are taken newest first while they fit, and the first one that
    does not fit ends the window (the context stays a contiguous tail, plus the older system messages).
    `max_chars` <= 0 keeps everything.
    """
    if max_chars <= 0:
        return list(messages)
    budget = max_chars - sum(len(m.content) for m in messages if m.role == "system")
    start = len(messages)
    while start > 0:
        message = messages[start - 1]
        if message.role != "system":
            if len(message.content) > budget and start < len(messages):
                break
            budget -= len(message.content)
        start -= 1
    return [m for m in messages[:start] if m.role == "system"] + list(messages[start:])
