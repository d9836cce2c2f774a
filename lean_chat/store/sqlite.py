"""SQLite history through aiosqlite: WAL, one schema, append-only turns, I/O off the event loop (one hop each)."""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
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

# Conversations at least this long are cached (shorter ones are cheap to read whole); the cache's bounds.
_CACHE_FROM = 32
_CACHE_CONVERSATIONS = 256
_CACHE_CHARS = 32 * 1024 * 1024

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
    """Conversations in one SQLite file; each operation runs whole on aiosqlite's worker thread."""

    persistent = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        # conversation id -> (created_at, messages, characters), least recently used first; touched only on
        # the worker thread.
        self._cache: OrderedDict[str, tuple[float, list[StoredMessage], int]] = OrderedDict()
        self._cached_chars = 0

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

    async def _run(self, work: Callable[..., _T], *args: Any) -> _T:
        """`work(connection, *args)` on the worker thread, in one hop (aiosqlite's own queue)."""
        # Each hop waits for a turn of the event loop, which is long while thousands of streams run: one hop
        # per operation, not one per statement, keeps saves quick under load. The worker runs one operation
        # at a time, so a transaction's statements are never interleaved with another's (no lock needed).
        db: Any = self.db
        result: _T = await db._execute(work, db._conn, *args)
        return result

    async def ping(self) -> None:
        """Run a trivial query."""
        await self.db.execute_fetchall("SELECT 1")

    async def load(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """The conversation's messages ([] when new); raise when foreign."""
        return await self._run(self._load, user_id, conversation_id)

    @_to_the_end
    async def append(self, user_id: str, conversation_id: str, messages: Sequence[StoredMessage], title: str) -> None:
        """Add messages at the end in one transaction, creating the conversation when new."""
        await self._run(_in_transaction, _append, user_id, conversation_id, list(messages), title, time.time())

    @_to_the_end
    async def create(self, user_id: str, conversation_id: str, title: str | None) -> str:
        """Create the conversation (or touch it when it is already the user's) and return its title."""
        return await self._run(_in_transaction, _create, user_id, conversation_id, title, time.time())

    @_to_the_end
    async def delete(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation when it is the user's."""
        if await self._run(_in_transaction, _delete, user_id, conversation_id):
            await self._run(lambda _: self._forget(conversation_id))

    @_to_the_end
    async def clear(self, user_id: str) -> None:
        """Delete all of the user's conversations."""
        await self._run(_in_transaction, _clear, user_id)

    async def list_conversations(self, user_id: str, limit: int) -> list[ConversationInfo]:
        """The user's conversations, most recently updated first."""
        rows = await self.db.execute_fetchall(
            "SELECT conversation_id, title, created_at, updated_at, message_count FROM lc_conversations"
            " WHERE user_id = ? ORDER BY updated_at DESC LIMIT ?",
            (user_id, limit),
        )
        return [ConversationInfo(str(c), str(t), int(ca), int(ua), int(n)) for c, t, ca, ua, n in rows]

    async def read(self, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """The conversation's messages, or [] when unknown or foreign."""
        return await self._run(_read, user_id, conversation_id)

    # The rest runs on the worker thread.

    def _load(self, db: sqlite3.Connection, user_id: str, conversation_id: str) -> list[StoredMessage]:
        """`load`, reading only the rows added since a long conversation was last cached."""
        # A turn's cost then does not grow with its conversation. The cache is checked against the row's
        # creation time and message count, so writes by another process on the same file are picked up.
        row = db.execute(
            "SELECT user_id, created_at, message_count FROM lc_conversations WHERE conversation_id = ?",
            (conversation_id,),
        ).fetchone()
        if is_reserved_for_other(conversation_id, user_id) or (row is not None and row[0] != user_id):
            raise ConversationForbidden(conversation_id)
        if row is None:
            self._forget(conversation_id)
            return []
        created, count = float(row[1]), int(row[2])
        cached = self._cache.pop(conversation_id, None)
        if cached is not None:
            self._cached_chars -= cached[2]
        if cached is not None and cached[0] == created and len(cached[1]) <= count:
            messages, chars = cached[1], cached[2]
            if len(messages) < count:
                added = _messages(db, conversation_id, len(messages))
                messages.extend(added)
                chars += sum(len(m.content) for m in added)
        else:
            messages = _messages(db, conversation_id)
            chars = sum(len(m.content) for m in messages)
        if len(messages) >= _CACHE_FROM:
            self._remember(conversation_id, created, messages, chars)
        return list(messages)

    def _remember(self, conversation_id: str, created: float, messages: list[StoredMessage], chars: int) -> None:
        """Keep a conversation's messages (most recently used last), within the cache's bounds."""
        if chars > _CACHE_CHARS // 4:
            return
        self._cache[conversation_id] = (created, messages, chars)
        self._cached_chars += chars
        while len(self._cache) > _CACHE_CONVERSATIONS or self._cached_chars > _CACHE_CHARS:
            _, (_, _, dropped) = self._cache.popitem(last=False)
            self._cached_chars -= dropped

    def _forget(self, conversation_id: str) -> None:
        """Drop a conversation from the cache."""
        cached = self._cache.pop(conversation_id, None)
        if cached is not None:
            self._cached_chars -= cached[2]


def _in_transaction(db: sqlite3.Connection, work: Callable[..., _T], *args: Any) -> _T:
    """`work(db, *args)` inside one write transaction; rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db, *args)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


def _owner(db: sqlite3.Connection, conversation_id: str) -> str | None:
    """The user owning a conversation, or None when it does not exist."""
    row = db.execute("SELECT user_id FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)).fetchone()
    return str(row[0]) if row else None


def _check(db: sqlite3.Connection, user_id: str, conversation_id: str) -> bool:
    """True when the conversation exists and is the user's, False when new; raise when foreign."""
    owner = _owner(db, conversation_id)
    if is_reserved_for_other(conversation_id, user_id) or (owner is not None and owner != user_id):
        raise ConversationForbidden(conversation_id)
    return owner is not None


def _messages(db: sqlite3.Connection, conversation_id: str, start: int = 0) -> list[StoredMessage]:
    """The messages of a conversation from index `start` on, in order."""
    rows = db.execute(
        "SELECT role, content, meta FROM lc_messages WHERE conversation_id = ? AND idx >= ? ORDER BY idx",
        (conversation_id, start),
    )
    return [StoredMessage(role, content, _decode_meta(meta) if meta else None) for role, content, meta in rows]


def _append(
    db: sqlite3.Connection, user_id: str, conversation_id: str, messages: list[StoredMessage], title: str, now: float
) -> None:
    """Add messages at the end, creating the conversation when new."""
    if not _check(db, user_id, conversation_id):
        db.execute(
            "INSERT INTO lc_conversations (conversation_id, user_id, title, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (conversation_id, user_id, title, now, now),
        )
    row = db.execute(
        "SELECT message_count FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    start = int(row[0])
    db.executemany(
        "INSERT INTO lc_messages (conversation_id, idx, role, content, meta) VALUES (?, ?, ?, ?, ?)",
        [
            (conversation_id, start + i, m.role, m.content, _encode_meta(m.meta) if m.meta else None)
            for i, m in enumerate(messages)
        ],
    )
    db.execute(
        "UPDATE lc_conversations SET message_count = ?, updated_at = ?,"
        " title = CASE WHEN title_explicit THEN title ELSE ? END WHERE conversation_id = ?",
        (start + len(messages), now, title, conversation_id),
    )


def _create(db: sqlite3.Connection, user_id: str, conversation_id: str, title: str | None, now: float) -> str:
    """Create the conversation (or touch it when it is already the user's) and return its title."""
    if _check(db, user_id, conversation_id):
        if title:
            db.execute(
                "UPDATE lc_conversations SET title = ?, title_explicit = 1, updated_at = ? WHERE conversation_id = ?",
                (title, now, conversation_id),
            )
        else:
            db.execute("UPDATE lc_conversations SET updated_at = ? WHERE conversation_id = ?", (now, conversation_id))
    else:
        db.execute(
            "INSERT INTO lc_conversations (conversation_id, user_id, title, title_explicit, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (conversation_id, user_id, title or "New chat", 1 if title else 0, now, now),
        )
    row = db.execute("SELECT title FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)).fetchone()
    return str(row[0])


def _delete(db: sqlite3.Connection, user_id: str, conversation_id: str) -> bool:
    """Delete the conversation when it is the user's; True when it was."""
    if _owner(db, conversation_id) != user_id:
        return False
    db.execute("DELETE FROM lc_messages WHERE conversation_id = ?", (conversation_id,))
    db.execute("DELETE FROM lc_conversations WHERE conversation_id = ?", (conversation_id,))
    return True


def _clear(db: sqlite3.Connection, user_id: str) -> None:
    """Delete all of the user's conversations."""
    db.execute(
        "DELETE FROM lc_messages WHERE conversation_id IN"
        " (SELECT conversation_id FROM lc_conversations WHERE user_id = ?)",
        (user_id,),
    )
    db.execute("DELETE FROM lc_conversations WHERE user_id = ?", (user_id,))


def _read(db: sqlite3.Connection, user_id: str, conversation_id: str) -> list[StoredMessage]:
    """The conversation's messages, or [] when unknown or foreign."""
    if _owner(db, conversation_id) != user_id:
        return []
    return _messages(db, conversation_id)
