"""The history rules every store shares: the merge of stored and incoming messages, titles, the context cap."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .base import StoredMessage

__all__ = [
    "NEW_CHAT",
    "ContextWindow",
    "cap_context",
    "has_parts",
    "is_prefix",
    "merge_history",
    "title_for",
    "with_stored_parts",
]

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


def has_parts(meta: dict[str, Any] | None) -> bool:
    """True when a message's meta holds a turn's parts (the stored copy alone has their provider state)."""
    return meta is not None and "parts" in meta


def with_stored_parts(
    incoming: Sequence[StoredMessage], kept: Iterable[tuple[int, StoredMessage]]
) -> list[StoredMessage]:
    """The incoming list with the stored copy at each (position, message) of `kept`: the stored messages with parts.

    A client resending the conversation never has the providers' opaque state (signatures, redacted thinking),
    so the context takes those messages from the store, meta included.
    """
    context = list(incoming)
    for position, message in kept:
        context[position] = message
    return context


def merge_history(
    stored: list[StoredMessage], incoming: list[StoredMessage]
) -> tuple[list[StoredMessage], list[StoredMessage]]:
    """(context, new): when the stored list is a prefix of the incoming one, the incoming list (with the stored
    copies of messages with parts), else stored + incoming."""
    if is_prefix(stored, incoming):
        kept = [(i, m) for i, m in enumerate(stored) if has_parts(m.meta)]
        return with_stored_parts(incoming, kept), incoming[len(stored) :]
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


class ContextWindow:
    """`cap_context` kept up to date while messages are appended: amortised constant work per message.

    The window is the older system messages plus a live tail; appending grows the tail and then drops its
    oldest messages while the non-system characters exceed what the system messages leave of the cap (a
    dropped system message moves to the kept ones). The tail only ever moves forward, so the result always
    equals `cap_context` of everything appended.
    """

    __slots__ = ("_head", "_tail", "cap", "count", "life", "system_chars", "systems", "tail_chars")

    def __init__(self, cap: int, life: int = 0, count: int = 0) -> None:
        self.cap = cap
        self.life = life
        self.count = count  # how many stored messages the window stands for
        self.systems: list[StoredMessage] = []
        self._tail: list[StoredMessage] = []
        self._head = 0
        self.system_chars = 0
        self.tail_chars = 0

    @property
    def chars(self) -> int:
        """Characters of content in the window."""
        return self.system_chars + self.tail_chars

    def extend(self, messages: Iterable[StoredMessage]) -> None:
        """Append messages at the end, then drop the oldest that no longer fit."""
        for message in messages:
            self._tail.append(message)
            if message.role == "system":
                self.system_chars += len(message.content)
            else:
                self.tail_chars += len(message.content)
        if self.cap <= 0:
            return
        budget = self.cap - self.system_chars
        tail, head = self._tail, self._head
        while self.tail_chars > budget and len(tail) - head > 1:
            dropped = tail[head]
            head += 1
            if dropped.role == "system":
                self.systems.append(dropped)
            else:
                self.tail_chars -= len(dropped.content)
        if head > 64 and head * 2 > len(tail):
            del tail[:head]
            head = 0
        self._head = head

    def messages(self) -> list[StoredMessage]:
        """The context, oldest first (a new list)."""
        return self.systems + self._tail[self._head :]

    def copy(self) -> ContextWindow:
        """An independent window with the same messages."""
        twin = ContextWindow(self.cap, self.life, self.count)
        twin.systems = list(self.systems)
        twin._tail = self._tail[self._head :]
        twin.system_chars, twin.tail_chars = self.system_chars, self.tail_chars
        return twin
