"""The Store protocol: where conversations and their messages are kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

__all__ = [
    "ConversationForbidden",
    "ConversationInfo",
    "Store",
    "StoredMessage",
    "default_conversation_id",
    "is_reserved_for_other",
]

_DEFAULT_PREFIX = "default:"


class StoredMessage(msgspec.Struct):
    """A message as kept and as returned by the history endpoints."""

    role: str
    content: str
    meta: dict[str, Any] | None = None


class ConversationInfo(msgspec.Struct):
    """One row of `GET /chat/conversations`."""

    conversationId: str
    title: str
    createdAt: int
    updatedAt: int
    messageCount: int


class ConversationForbidden(Exception):
    """The conversation belongs to another user."""


def default_conversation_id(user_id: str) -> str:
    """The id of a user's default conversation (the one `/chat/history` shows)."""
    return _DEFAULT_PREFIX + user_id


def is_reserved_for_other(conversation_id: str, user_id: str) -> bool:
    """True when the id is another user's default conversation, which no one else may take."""
    return conversation_id.startswith(_DEFAULT_PREFIX) and conversation_id != default_conversation_id(user_id)


class Store(Protocol):
    """Conversation storage; every method checks ownership by user id."""

    persistent: bool

    async def open(self) -> None:
        """Make the store ready (create the schema)."""
        ...

    async def close(self) -> None:
        """Release the store's resources."""
        ...

    async def ping(self) -> None:
        """Raise when the store cannot answer."""
        ...

    async def load(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """The conversation's messages ([] when new); raise ConversationForbidden when foreign."""
        ...

    async def append(self, user_id: str, conversation_id: str, messages: Sequence[StoredMessage], title: str) -> None:
        """Add messages at the end, creating the conversation; raise ConversationForbidden when foreign."""
        ...

    async def create(self, user_id: str, conversation_id: str, title: str | None) -> str:
        """Create (or touch) a conversation and return its title; raise ConversationForbidden when foreign."""
        ...

    async def delete(self, user_id: str, conversation_id: str) -> None:
        """Delete one of the user's conversations; foreign or unknown ids change nothing."""
        ...

    async def clear(self, user_id: str) -> None:
        """Delete all of the user's conversations."""
        ...

    async def list_conversations(self, user_id: str, limit: int) -> list[ConversationInfo]:
        """The user's conversations, newest first."""
        ...

    async def read(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """The messages the conversation endpoint shows ([] when unknown or foreign)."""
        ...
