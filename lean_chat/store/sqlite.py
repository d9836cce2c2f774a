"""SQLite history through aiosqlite: WAL, one schema, append-only turns, I/O off the event loop."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import aiosqlite
import msgspec

from .base import ConversationForbidden, ConversationInfo, StoredMessage, is_reserved_for_other

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lc_conversations (
    conversation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    title TEXT NOT NULL,
    title_explicit INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS lc_conversations_by_user ON lc_conversations (user_id, updated_at DESC);
CREATE TABLE IF NOT EXISTS lc_messages (
    conversation_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    meta TEXT,
    PRIMARY KEY (conversation_id, idx)
) WITHOUT ROWID;
"""

_encode_meta = msgspec.json.Encoder().encode
_decode_meta = msgspec.json.Decoder(dict[str, Any]).decode


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _to_the_end(write: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """A store write that runs to its end even when its caller is cancelled (a client gone mid-save):
    a transaction cut at BEGIN or COMMIT would leave the shared connection inside it, and the reply unsaved."""

    @functools.wraps(write)
    async def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        task = asyncio.ensure_future(write(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved: the caller is gone, and the cancellation is what it sees
            raise

    return run


class SQLiteStore:
    """Conversations in one SQLite file; every statement runs on aiosqlite's worker thread."""

    persistent = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        # One connection serves the app; the lock keeps each transaction's statements together.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open the file (creating folders and schema) in WAL mode."""
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        await db.execute("PRAGMA busy_timeout = 5000")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.executescript(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection."""
        if self._db is None:
            raise RuntimeError("SQLiteStore is not open")
        return self._db

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection inside one write transaction, held alone; rolled back on any error."""
        async with self._lock:
            db = self.db
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def ping(self) -> None:
        """Run a trivial query."""
        async with self._lock:
            await self.db.execute_fetchall("SELECT 1")

    async def _owner(self, conversation_id: str) -> str | None:
        """The user owning a conversation, or None when it does not exist."""
        rows = await self.db.execute_fetchall(
            "SELECT user_id FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)
        )
        return str(next(iter(rows))[0]) if rows else None

    async def _check(self, user_id: str, conversation_id: str) -> bool:
        """True when the conversation exists and is the user's, False when new; raise when foreign."""
        owner = await self._owner(conversation_id)
        if is_reserved_for_other(conversation_id, user_id) or (owner is not None and owner != user_id):
            raise ConversationForbidden(conversation_id)
        return owner is not None

    async def _messages(self, conversation_id: str) -> list[StoredMessage]:
        """All messages of a conversation, in order."""
        rows = await self.db.execute_fetchall(
            "SELECT role, content, meta FROM lc_messages WHERE conversation_id = ? ORDER BY idx", (conversation_id,)
        )
        return [StoredMessage(role, content, _decode_meta(meta) if meta else None) for role, content, meta in rows]

    async def load(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """The conversation's messages ([] when new); raise when foreign."""
        async with self._lock:
            if not await self._check(user_id, conversation_id):
                return []
            return await self._messages(conversation_id)

    @_to_the_end
    async def append(self, user_id: str, conversation_id: str, messages: Sequence[StoredMessage], title: str) -> None:
        """Add messages at the end in one transaction, creating the conversation when new."""
        now = time.time()
        async with self._transaction() as db:
            if not await self._check(user_id, conversation_id):
                await db.execute(
                    "INSERT INTO lc_conversations (conversation_id, user_id, title, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (conversation_id, user_id, title, now, now),
                )
            rows = await db.execute_fetchall(
                "SELECT message_count FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)
            )
            start = int(next(iter(rows))[0])
            await db.executemany(
                "INSERT INTO lc_messages (conversation_id, idx, role, content, meta) VALUES (?, ?, ?, ?, ?)",
                [
                    (conversation_id, start + i, m.role, m.content, _encode_meta(m.meta) if m.meta else None)
                    for i, m in enumerate(messages)
                ],
            )
            await db.execute(
                "UPDATE lc_conversations SET message_count = ?, updated_at = ?,"
                " title = CASE WHEN title_explicit THEN title ELSE ? END WHERE conversation_id = ?",
                (start + len(messages), now, title, conversation_id),
            )

    @_to_the_end
    async def create(self, user_id: str, conversation_id: str, title: str | None) -> str:
        """Create the conversation (or touch it when it is already the user's) and return its title."""
        now = time.time()
        async with self._transaction() as db:
            if await self._check(user_id, conversation_id):
                if title:
                    await db.execute(
                        "UPDATE lc_conversations SET title = ?, title_explicit = 1, updated_at = ?"
                        " WHERE conversation_id = ?",
                        (title, now, conversation_id),
                    )
                else:
                    await db.execute(
                        "UPDATE lc_conversations SET updated_at = ? WHERE conversation_id = ?",
                        (now, conversation_id),
                    )
            else:
                await db.execute(
                    "INSERT INTO lc_conversations"
                    " (conversation_id, user_id, title, title_explicit, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (conversation_id, user_id, title or "New chat", 1 if title else 0, now, now),
                )
            rows = await db.execute_fetchall(
                "SELECT title FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)
            )
        return str(next(iter(rows))[0])

    @_to_the_end
    async def delete(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation when it is the user's."""
        async with self._transaction() as db:
            if await self._owner(conversation_id) == user_id:
                await db.execute("DELETE FROM lc_messages WHERE conversation_id = ?", (conversation_id,))
                await db.execute("DELETE FROM lc_conversations WHERE conversation_id = ?", (conversation_id,))

    @_to_the_end
    async def clear(self, user_id: str) -> None:
        """Delete all of the user's conversations."""
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM lc_messages WHERE conversation_id IN"
                " (SELECT conversation_id FROM lc_conversations WHERE user_id = ?)",
                (user_id,),
            )
            await db.execute("DELETE FROM lc_conversations WHERE user_id = ?", (user_id,))

    async def list_conversations(self, user_id: str, limit: int) -> list[ConversationInfo]:
        """The user's conversations, most recently updated first."""
        async with self._lock:
            rows = await self.db.execute_fetchall(
                "SELECT conversation_id, title, created_at, updated_at, message_count FROM lc_conversations"
                " WHERE user_id = ? ORDER BY updated_at DESC LIMIT ?",
                (user_id, limit),
            )
        return [ConversationInfo(str(c), str(t), int(ca), int(ua), int(n)) for c, t, ca, ua, n in rows]

    async def read(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """The conversation's messages, or [] when unknown or foreign."""
        async with self._lock:
            if await self._owner(conversation_id) != user_id:
                return []
            return await self._messages(conversation_id)
