"""In-memory history, used when persistence is disabled (`sqlite_path=""`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .base import ConversationForbidden, ConversationInfo, StoredMessage, is_reserved_for_other

__all__ = ["MemoryStore"]


@dataclass
class _Conversation:
    owner: str
    messages: list[StoredMessage] = field(default_factory=list)


class MemoryStore:
    """History per conversation in this process; the conversation endpoints list nothing, as the reference."""

    persistent = False

    def __init__(self) -> None:
        self._conversations: dict[str, _Conversation] = {}

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def ping(self) -> None:
        """Always answers."""

    def _owned(self, user_id: str, conversation_id: str) -> _Conversation | None:
        """The conversation when the user may use it (None when new); raise when foreign."""
        found = self._conversations.get(conversation_id)
        if is_reserved_for_other(conversation_id, user_id) or (found is not None and found.owner != user_id):
            raise ConversationForbidden(conversation_id)
        return found

    async def load(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """The conversation's messages."""
        found = self._owned(user_id, conversation_id)
        return list(found.messages) if found else []

    async def append(self, user_id: str, conversation_id: str, messages: Sequence[StoredMessage], title: str) -> None:
        """Add messages at the end."""
        found = self._owned(user_id, conversation_id)
        if found is None:
            found = self._conversations[conversation_id] = _Conversation(owner=user_id)
        found.messages.extend(messages)

    async def create(self, user_id: str, conversation_id: str, title: str | None) -> str:
        """Claim the id for the user."""
        if self._owned(user_id, conversation_id) is None:
            self._conversations[conversation_id] = _Conversation(owner=user_id)
        return title or "New chat"

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

    async def read(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """Nothing: without persistence the conversation endpoint shows no messages."""
        return []
