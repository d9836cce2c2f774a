"""SQLite history: WAL, a versioned schema, append-only turns, each operation whole on one worker thread."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec

from ..random_ids import random_bits
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
from .group_commit import GroupCommit
from .history import NEW_CHAT, ContextWindow, has_parts, same, title_for, with_stored_parts
from .window_cache import WindowCache
from .worker import Worker

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

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

# Version 2: a conversation's life (a delete ends it; a reply is saved only into the life its turn started in),
# and an index of system messages, which a capped context keeps however old they are.
_MIGRATE_TO_2 = """
ALTER TABLE lc_conversations ADD COLUMN life INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS lc_messages_system ON lc_messages (conversation_id, idx) WHERE role = 'system';
"""
# The statements of a turn and of a reply, named so that benchmarks/sqlite_driver.py (the same store on aiosqlite,
# for the comparison in docs/store.md) runs exactly these.
SELECT_CONVERSATION = (
    "SELECT user_id, life, title, title_explicit, message_count FROM lc_conversations WHERE conversation_id = ?"
)
INSERT_CONVERSATION = (
    "INSERT INTO lc_conversations (conversation_id, user_id, title, created_at, updated_at, life, message_count)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_AFTER_TURN = "UPDATE lc_conversations SET message_count = ?, updated_at = ?, title = ? WHERE conversation_id = ?"
SELECT_ROWS_FROM = (
    "SELECT role, content, meta FROM lc_messages WHERE conversation_id = ? AND idx >= ? AND idx < ? ORDER BY idx"
)
# The merge's prefix check: every stored role and content, and the meta of those whose meta may hold parts (instr
# in SQL: no meta of the others is read into Python).
SELECT_PREFIX_ROWS = (
    "SELECT role, content, CASE WHEN instr(meta, '\"parts\"') THEN meta END FROM lc_messages"
    " WHERE conversation_id = ? ORDER BY idx"
)
SELECT_SYSTEM_ROWS = (
    "SELECT idx, role, content, meta FROM lc_messages WHERE conversation_id = ? AND role = 'system' ORDER BY idx"
)
SELECT_ROWS_NEWEST_FIRST = (
    "SELECT idx, role, content, meta FROM lc_messages WHERE conversation_id = ? ORDER BY idx DESC"
)
SELECT_ANY_USER_MESSAGE = "SELECT 1 FROM lc_messages WHERE conversation_id = ? AND role = 'user' LIMIT 1"
INSERT_MESSAGE = "INSERT INTO lc_messages (conversation_id, idx, role, content, meta) VALUES (?, ?, ?, ?, ?)"
SELECT_FOR_REPLY = "SELECT user_id, life, message_count FROM lc_conversations WHERE conversation_id = ?"
UPDATE_AFTER_REPLY = "UPDATE lc_conversations SET message_count = ?, updated_at = ? WHERE conversation_id = ?"

_VERSION = 2

# Conversations at least this long keep their capped context cached (shorter ones are cheap to read whole);
# the cache's bounds.
_CACHE_FROM = 32

_encode_meta = msgspec.json.Encoder().encode
_decode_meta = msgspec.json.Decoder(dict[str, Any]).decode


class SQLiteStore:
    """Conversations in one SQLite file; each operation runs whole on the store's worker thread."""

    persistent = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._worker = Worker("lean-chat-sqlite")
        self._writes = GroupCommit(self._worker)
        self._db: sqlite3.Connection | None = None
        # conversation id -> its window, least recently used first; touched only on the worker thread.
        self._cache = WindowCache(_CACHE_FROM)

    def describe(self) -> str:
        """The file's absolute path."""
        return f"in SQLite at {os.path.abspath(self.path)}"

    async def open(self) -> None:
        """Open the file (creating folders, schema and migrations) in WAL mode."""
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        self._worker.start()
        self._db = await self._worker.run(_connect, self.path)

    async def close(self) -> None:
        """Close the connection and end the worker thread."""
        if self._db is not None:
            db, self._db = self._db, None
            await self._worker.run(db.close)
        self._worker.stop()

    async def run(self, work: Callable[..., _T], *args: Any) -> _T:
        """`work(connection, *args)` on the worker thread, in one hop."""
        if self._db is None:
            raise RuntimeError("SQLiteStore is not open")
        return await self._worker.run(work, self._db, *args)

    async def write(self, work: Callable[..., _T], *args: Any) -> _T:
        """`work(connection, *args)` in a write transaction on the worker thread (committed with the writes queued
        beside it: group_commit.py); it runs to its end even when the caller is cancelled (a client gone
        mid-save), which then waits for it: a transaction cut at BEGIN or COMMIT would leave the shared connection
        inside it, and the reply unsaved."""
        if self._db is None:
            raise RuntimeError("SQLiteStore is not open")
        return await self._writes.write(self._db, work, *args)

    async def ping(self) -> None:
        """Run a trivial query."""
        await self.run(lambda db: db.execute("SELECT 1").fetchone())

    async def start_turn(
        self, user_id: str, conversation_id: str, incoming: Sequence[StoredMessage], max_context_chars: int
    ) -> TurnStart:
        """Merge, commit the new messages and return the capped context, in one transaction."""
        args = (user_id, conversation_id, list(incoming), max_context_chars, time.time())
        return await self.write(self._start_turn, *args)

    async def save_reply(self, user_id: str, conversation_id: str, life: int, reply: StoredMessage) -> None:
        """Append the reply when the conversation is still the user's, in that life; else ConversationGone."""
        await self.write(_save_reply, user_id, conversation_id, life, reply, time.time())

    async def truncate(self, user_id: str, conversation_id: str, keep: int) -> None:
        """Keep the first `keep` messages, in a new life, when the conversation is the user's and holds more."""
        await self.write(self._truncate, user_id, conversation_id, max(0, keep), time.time())

    async def create(self, user_id: str, conversation_id: str, title: str | None) -> str:
        """Create the conversation (or touch it when it is already the user's) and return its title."""
        return await self.write(_create, user_id, conversation_id, title, time.time())

    async def delete(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation when it is the user's."""
        await self.write(self._delete, user_id, conversation_id)

    async def clear(self, user_id: str) -> None:
        """Delete all of the user's conversations."""
        await self.write(_clear, user_id)

    async def list_conversations(self, user_id: str, limit: int) -> list[ConversationInfo]:
        """The user's conversations, most recently updated first."""
        return await self.run(_list, user_id, limit)

    async def history(self, user_id: str) -> list[StoredMessage]:
        """The messages of the user's default conversation."""
        page = await self.run(_read, user_id, default_conversation_id(user_id), None, None)
        return page.messages

    async def read(
        self, user_id: str, conversation_id: str, limit: int | None = None, before: int | None = None
    ) -> ConversationPage:
        """A page of the conversation's messages (all by default); empty when unknown or foreign."""
        return await self.run(_read, user_id, conversation_id, limit, before)

    # The rest runs on the worker thread.

    def _start_turn(
        self,
        db: sqlite3.Connection,
        user_id: str,
        conversation_id: str,
        incoming: list[StoredMessage],
        cap: int,
        now: float,
    ) -> TurnStart:
        """`start_turn` inside its transaction: reads only the stored messages the merge and the cap need."""
        row = db.execute(
            SELECT_CONVERSATION,
            (conversation_id,),
        ).fetchone()
        if is_reserved_for_other(conversation_id, user_id) or (row is not None and row[0] != user_id):
            raise ConversationForbidden(conversation_id)
        if row is None:  # a new conversation: written below in one INSERT, with its messages counted and titled
            life, title, explicit, count = _new_life(), NEW_CHAT, False, 0
        else:
            life, title, explicit, count = int(row[1]), str(row[2]), bool(row[3]), int(row[4])
        kept = _stored_prefix(db, conversation_id, incoming) if 0 < count <= len(incoming) else None
        prefix = kept is not None
        if kept is not None:  # the client resent the conversation: its copies, but the stored ones with parts
            new = incoming[count:]
            window = ContextWindow(cap, life)
            window.extend(with_stored_parts(incoming, kept))
        elif count:
            new = incoming
            window = self._window(db, conversation_id, life, count, cap)
            window.extend(incoming)
        else:  # nothing stored: nothing to read
            new = incoming
            window = ContextWindow(cap, life)
            window.extend(incoming)
        window.count = count + len(new)
        if new:
            known = incoming[:count] if prefix or not count else None
            if not explicit and title == NEW_CHAT and not _has_user(db, conversation_id, known):
                title = title_for(new)
            _insert(db, conversation_id, count, new)
        if row is None:
            db.execute(
                INSERT_CONVERSATION,
                (conversation_id, user_id, title, now, now, life, len(new)),
            )
        elif new:
            db.execute(
                UPDATE_AFTER_TURN,
                (count + len(new), now, title, conversation_id),
            )
        self._cache.keep(conversation_id, window)
        return TurnStart(window.messages(), title, life)

    def _window(self, db: sqlite3.Connection, conversation_id: str, life: int, count: int, cap: int) -> ContextWindow:
        """The capped context of the stored messages: from the cache plus rows added since, or from the file."""
        cached = self._cache.take(conversation_id)
        if cached is not None and cached.life == life and cached.cap == cap and cached.count <= count:
            if cached.count < count:
                cached.extend(_messages(db, conversation_id, cached.count, count))
                cached.count = count
            return cached
        window = ContextWindow(cap, life, count)
        if count:
            window.extend(_tail(db, conversation_id, cap))
        return window

    def _truncate(self, db: sqlite3.Connection, user_id: str, conversation_id: str, keep: int, now: float) -> None:
        """Drop the messages from position `keep` on, and start a new life (nothing when none would go)."""
        changed = db.execute(
            "UPDATE lc_conversations SET message_count = ?, updated_at = ?, life = ?"
            " WHERE conversation_id = ? AND user_id = ? AND message_count > ?",
            (keep, now, _new_life(), conversation_id, user_id, keep),
        ).rowcount
        if changed:
            db.execute("DELETE FROM lc_messages WHERE conversation_id = ? AND idx >= ?", (conversation_id, keep))
            self._cache.forget(conversation_id)

    def _delete(self, db: sqlite3.Connection, user_id: str, conversation_id: str) -> None:
        """Delete the conversation when it is the user's."""
        if _owner(db, conversation_id) != user_id:
            return
        db.execute("DELETE FROM lc_messages WHERE conversation_id = ?", (conversation_id,))
        db.execute("DELETE FROM lc_conversations WHERE conversation_id = ?", (conversation_id,))
        self._cache.forget(conversation_id)


def _connect(path: str) -> sqlite3.Connection:
    """Open the file in WAL mode (autocommit: transactions are explicit) and bring its schema up to date."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    _in_transaction(db, _migrate)
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """Create the schema, or bring an older file's up to the current version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version >= _VERSION:
        return
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    columns = {str(row[1]) for row in db.execute("PRAGMA table_info(lc_conversations)")}
    for statement in _MIGRATE_TO_2.split(";"):
        if statement.strip() and not ("ADD COLUMN life" in statement and "life" in columns):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {_VERSION}")


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


def _new_life() -> int:
    """A fresh life token (random: unique per conversation id in practice, across processes too)."""
    return random_bits(62) + 1


def _message(role: str, content: str, meta: str | None) -> StoredMessage:
    """A stored row as a message."""
    return StoredMessage(role, content, _decode_meta(meta) if meta else None)


def _owner(db: sqlite3.Connection, conversation_id: str) -> str | None:
    """The user owning a conversation, or None when it does not exist."""
    row = db.execute("SELECT user_id FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)).fetchone()
    return str(row[0]) if row else None


def _messages(db: sqlite3.Connection, conversation_id: str, start: int, end: int) -> list[StoredMessage]:
    """The messages at positions start..end-1 of a conversation, in order."""
    rows = db.execute(
        SELECT_ROWS_FROM,
        (conversation_id, start, end),
    )
    return [_message(*row) for row in rows]


def _stored_prefix(
    db: sqlite3.Connection, conversation_id: str, incoming: list[StoredMessage]
) -> list[tuple[int, StoredMessage]] | None:
    """When the stored messages are a prefix of `incoming`, those with parts by position (`with_stored_parts`);
    else None. Reads no further than the first difference."""
    kept: list[tuple[int, StoredMessage]] = []
    cursor = db.execute(SELECT_PREFIX_ROWS, (conversation_id,))
    try:
        for position, (role, content, meta) in enumerate(cursor):
            if position >= len(incoming) or not same(StoredMessage(role, content), incoming[position]):
                return None
            if meta is not None:
                keep_with_parts(kept, position, _message(role, content, meta))
        return kept
    finally:
        cursor.close()


def keep_with_parts(kept: list[tuple[int, StoredMessage]], position: int, message: StoredMessage) -> None:
    """Add (position, message) to `kept` when the message's meta holds parts (the SQL's test is only textual)."""
    if has_parts(message.meta):
        kept.append((position, message))


def _tail(db: sqlite3.Connection, conversation_id: str, cap: int) -> list[StoredMessage]:
    """`cap_context` of the stored messages, reading the system messages and then only the newest rows that fit."""
    systems = [
        (int(idx), _message(role, content, meta))
        for idx, role, content, meta in db.execute(
            SELECT_SYSTEM_ROWS,
            (conversation_id,),
        )
    ]
    budget = cap - sum(len(m.content) for _, m in systems) if cap > 0 else 0
    tail: list[StoredMessage] = []
    start: int | None = None
    cursor = db.execute(
        SELECT_ROWS_NEWEST_FIRST,
        (conversation_id,),
    )
    try:
        for idx, role, content, meta in cursor:
            if role != "system" and cap > 0:
                if len(content) > budget and tail:
                    break
                budget -= len(content)
            tail.append(_message(role, content, meta))
            start = int(idx)
    finally:
        cursor.close()
    tail.reverse()
    older = [m for idx, m in systems if start is None or idx < start]
    return older + tail


def _has_user(db: sqlite3.Connection, conversation_id: str, known: list[StoredMessage] | None) -> bool:
    """True when the stored conversation already has a user message (`known`: the stored messages, when read)."""
    if known is not None:
        return any(m.role == "user" for m in known)
    row = db.execute(SELECT_ANY_USER_MESSAGE, (conversation_id,)).fetchone()
    return row is not None


def _insert(db: sqlite3.Connection, conversation_id: str, start: int, messages: Sequence[StoredMessage]) -> None:
    """Write messages at positions start, start+1, ..."""
    db.executemany(
        INSERT_MESSAGE,
        [
            (conversation_id, start + i, m.role, m.content, _encode_meta(m.meta) if m.meta else None)
            for i, m in enumerate(messages)
        ],
    )


def _save_reply(
    db: sqlite3.Connection, user_id: str, conversation_id: str, life: int, reply: StoredMessage, now: float
) -> None:
    """Append the reply when the conversation is the user's in that life; else write nothing."""
    row = db.execute(SELECT_FOR_REPLY, (conversation_id,)).fetchone()
    if row is None or row[0] != user_id or int(row[1]) != life:
        raise ConversationGone(conversation_id)
    count = int(row[2])
    _insert(db, conversation_id, count, [reply])
    db.execute(
        UPDATE_AFTER_REPLY,
        (count + 1, now, conversation_id),
    )


def _create(db: sqlite3.Connection, user_id: str, conversation_id: str, title: str | None, now: float) -> str:
    """Create the conversation (or touch it when it is already the user's) and return its title."""
    owner = _owner(db, conversation_id)
    if is_reserved_for_other(conversation_id, user_id) or (owner is not None and owner != user_id):
        raise ConversationForbidden(conversation_id)
    if owner is not None:
        if title:
            db.execute(
                "UPDATE lc_conversations SET title = ?, title_explicit = 1, updated_at = ? WHERE conversation_id = ?",
                (title, now, conversation_id),
            )
        else:
            db.execute("UPDATE lc_conversations SET updated_at = ? WHERE conversation_id = ?", (now, conversation_id))
    else:
        db.execute(
            "INSERT INTO lc_conversations"
            " (conversation_id, user_id, title, title_explicit, created_at, updated_at, life)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, user_id, title or NEW_CHAT, 1 if title else 0, now, now, _new_life()),
        )
    row = db.execute("SELECT title FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)).fetchone()
    return str(row[0])


def _clear(db: sqlite3.Connection, user_id: str) -> None:
    """Delete all of the user's conversations."""
    db.execute(
        "DELETE FROM lc_messages WHERE conversation_id IN"
        " (SELECT conversation_id FROM lc_conversations WHERE user_id = ?)",
        (user_id,),
    )
    db.execute("DELETE FROM lc_conversations WHERE user_id = ?", (user_id,))


def _list(db: sqlite3.Connection, user_id: str, limit: int) -> list[ConversationInfo]:
    """The user's conversations, most recently updated first."""
    rows = db.execute(
        "SELECT conversation_id, title, created_at, updated_at, message_count FROM lc_conversations"
        " WHERE user_id = ? ORDER BY updated_at DESC LIMIT ?",
        (user_id, limit),
    )
    return [ConversationInfo(str(c), str(t), int(ca), int(ua), int(n)) for c, t, ca, ua, n in rows]


def _read(
    db: sqlite3.Connection, user_id: str, conversation_id: str, limit: int | None, before: int | None
) -> ConversationPage:
    """The `limit` newest messages before position `before` (all when None); empty when unknown or foreign."""
    row = db.execute(
        "SELECT user_id, message_count FROM lc_conversations WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    if row is None or row[0] != user_id:
        return ConversationPage([], 0)
    end = int(row[1]) if before is None else max(0, min(int(row[1]), before))
    start = 0 if limit is None else max(0, end - limit)
    return ConversationPage(_messages(db, conversation_id, start, end), start)
