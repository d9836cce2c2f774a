"""In-memory history, used when persistence is disabled (`sqlite_path=""`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from .base import (
    ConversationForbidden,
    ConversationGone,
    ConversationInfo,
    ConversationPage,
    StoredMessage,
    TurnStart,
    default_conversation_id,
    is_reserved_for_other,
)
from .history import NEW_CHAT, ContextWindow, has_parts, is_prefix, title_for, with_stored_parts

__all__ = ["MemoryStore"]


@dataclass
class _Conversation:
    owner: str
    life: int
    title: str = NEW_CHAT
    title_explicit: bool = False
    has_user: bool = False
    messages: list[StoredMessage] = field(default_factory=list)
    window: ContextWindow | None = None  # the capped context of `messages`, kept up to date


class MemoryStore:
    """History per conversation in this process; the conversation endpoints list nothing, as the reference."""

    persistent = False

    def __init__(self) -> None:
        self._conversations: dict[str, _Conversation] = {}
        self._lives = itertools.count(1)

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def ping(self) -> None:
        """Always answers."""

    def describe(self) -> str:
        """In memory."""
        return "in memory"

    def _owned(self, user_id: str, conversation_id: str) -> _Conversation | None:
        """The conversation when the user may use it (None when new); raise when foreign."""
        found = self._conversations.get(conversation_id)
        if is_reserved_for_other(conversation_id, user_id) or (found is not None and found.owner != user_id):
            raise ConversationForbidden(conversation_id)
        return found

    def _claim(self, user_id: str, conversation_id: str) -> _Conversation:
        """The user's conversation, created when new; raise when foreign."""
        found = self._owned(user_id, conversation_id)
        if found is None:
            found = self._conversations[conversation_id] = _Conversation(owner=user_id, life=next(self._lives))
        return found

    async def start_turn(
        self, user_id: str, conversation_id: str, incoming: Sequence[StoredMessage], max_context_chars: int
    ) -> TurnStart:
        """Merge, save the new messages, and return the capped context."""
        conversation = self._claim(user_id, conversation_id)
        stored = conversation.messages
        window = conversation.window
        if is_prefix(stored, incoming):
            new = list(incoming[len(stored) :])
            window = ContextWindow(max_context_chars)
            window.extend(with_stored_parts(incoming, [(i, m) for i, m in enumerate(stored) if has_parts(m.meta)]))
        else:
            new = list(incoming)
            if window is None or window.cap != max_context_chars:
                window = ContextWindow(max_context_chars)
                window.extend(stored)
            window.extend(new)
        if not conversation.title_explicit and not conversation.has_user:
            conversation.title = title_for(new)
        conversation.has_user = conversation.has_user or any(m.role == "user" for m in new)
        stored.extend(new)
        conversation.window = window
        return TurnStart(window.messages(), conversation.title, conversation.life)

    async def save_reply(self, user_id: str, conversation_id: str, life: int, reply: StoredMessage) -> None:
        """Append the reply when the conversation is still the user's, in that life."""
        found = self._conversations.get(conversation_id)
        if found is None or found.owner != user_id or found.life != life:
            raise ConversationGone(conversation_id)
        found.messages.append(reply)
        if found.window is not None:
            found.window.extend([reply])

    async def truncate(self, user_id: str, conversation_id: str, keep: int) -> None:
        """Keep the first `keep` messages, in a new life, when the conversation is the user's and holds more."""
        found = self._conversations.get(conversation_id)
        if found is not None and found.owner == user_id and len(found.messages) > max(0, keep):
            del found.messages[max(0, keep) :]
            found.window = None
            found.life = next(self._lives)

    async def create(self, user_id: str, conversation_id: str, title: str | None) -> str:
        """Claim the id for the user; an explicit title is kept."""
        conversation = self._claim(user_id, conversation_id)
        if title:
            conversation.title, conversation.title_explicit = title, True
        return title or conversation.title

    async def delete(self, user_id: str, conversation_id: str) -> None:
        """Forget one of the user's conversations."""
        found = self._conversations.get(conversation_id)
        if found is not None and found.owner == user_id:
            del self._conversations[conversation_id]

    async def clear(self, user_id: str) -> None:
        """Forget all of the user's conversations."""
        for cid in [cid for cid, conv in self._conversations.items() if conv.owner == user_id]:
            del self._conversations[cid]

    async def list_conversations(self, user_id: str, limit: int) -> list[ConversationInfo]:
        """Nothing: without persistence there is no conversation list."""
        return []

    async def history(self, user_id: str) -> list[StoredMessage]:
        """The messages of the user's default conversation."""
        found = self._conversations.get(default_conversation_id(user_id))
        return list(found.messages) if found is not None else []

    async def read(
        self, user_id: str, conversation_id: str, limit: int | None = None, before: int | None = None
    ) -> ConversationPage:
        """The conversation's messages (the `GET /chat/conversation` endpoint shows none without persistence)."""
        found = self._conversations.get(conversation_id)
        if found is None or found.owner != user_id:
            return ConversationPage([], 0)
        count = len(found.messages)
        end = count if before is None else max(0, min(count, before))
        start = 0 if limit is None else max(0, end - limit)
        return ConversationPage(found.messages[start:end], start)
