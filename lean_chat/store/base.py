"""The Store protocol: where conversations and their messages are kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from ..refusals import Refusal

__all__ = [
    "ConversationForbidden",
    "ConversationGone",
    "ConversationInfo",
    "ConversationPage",
    "StoreUnavailable",
    "Store",
    "StoredMessage",
    "TurnStart",
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


class TurnStart(msgspec.Struct):
    """What a turn starts from: the context to send upstream, the conversation's title, and its life."""

    context: list[StoredMessage]
    title: str
    # Names this incarnation of the conversation: a delete or a clear ends it, and a reply is saved only into
    # the life its turn started in.
    life: int


class ConversationPage(msgspec.Struct):
    """A page of a conversation's messages, oldest first; `start` is the position of the first one."""

    messages: list[StoredMessage]
    start: int


class ConversationForbidden(Exception):
    """The conversation belongs to another user."""


class StoreUnavailable(Refusal):
    """The store cannot be reached now (a database gone or restarting); nothing was written (503)."""

    status_code = 503
    detail = "The history store is unavailable; try again shortly."
    headers = {"Retry-After": "1"}

    def __init__(self, reason: str = "") -> None:
        super().__init__()
        self.reason = reason  # for the log (an exception type name); the client sees only `detail`


class ConversationGone(Exception):
    """The conversation was deleted (or cleared, or taken over) since its turn started: nothing was written."""


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

    def describe(self) -> str:
        """Where the history is kept, for the start-up line (no secrets)."""
        ...

    async def start_turn(
        self, user_id: str, conversation_id: str, incoming: Sequence[StoredMessage], max_context_chars: int
    ) -> TurnStart:
        """Merge `incoming` into the conversation, commit its new messages, and return the capped context.

        One operation (one round trip): creates the conversation when new; raise ConversationForbidden when
        foreign. The context follows `history.merge_history` then `history.cap_context`.
        """
        ...

    async def save_reply(self, user_id: str, conversation_id: str, life: int, reply: StoredMessage) -> None:
        """Append the assistant reply when the conversation is still the user's, in that life; else ConversationGone."""
        ...

    async def truncate(self, user_id: str, conversation_id: str, keep: int) -> None:
        """Keep only the first `keep` messages (a reply regenerated, a message edited); foreign or unknown: nothing.

        When messages go, the conversation starts a new life: a reply still streaming into the old one is not saved.
        """
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

    async def history(self, user_id: str) -> list[StoredMessage]:
        """The messages of the user's default conversation (what `/chat/history` shows, in every mode)."""
        ...

    async def read(
        self, user_id: str, conversation_id: str, limit: int | None = None, before: int | None = None
    ) -> ConversationPage:
        """The conversation's messages: the `limit` newest before position `before` (all when None), oldest first.

        Unknown or foreign conversations give an empty page.
        """
        ...
