"""PostgreSQL history on asyncpg, shared by several lean_chat instances: one statement per operation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec

from .base import (
    ConversationForbidden,
    ConversationGone,
    ConversationInfo,
    ConversationPage,
    StoredMessage,
    StoreUnavailable,
    TurnStart,
    default_conversation_id,
    is_reserved_for_other,
)
from .history import NEW_CHAT, ContextWindow, has_parts, title_for, with_stored_parts
from .postgres_schema import LOCK_KEY, MIGRATIONS, VERSION_TABLE
from .window_cache import WindowCache
from .worker import to_the_end

__all__ = ["PostgresStore"]

# Conversations keep their capped context cached per process (LRU), checked against the database's life and
# count on every turn (so turns served by other instances are picked up); the cache's bounds.
_CACHE_FROM = 1

_encode_meta = msgspec.json.Encoder().encode
_decode_meta = msgspec.json.Decoder(dict[str, Any]).decode

# Faults of the connection, not of the statement: the database is gone or restarting, or it cut this connection
# (a terminated backend, a failover, a pooler restart). Each is StoreUnavailable: a 503 before a stream,
# `store_unavailable` in one.
_GONE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def _never_sent(exc: BaseException) -> bool:
    """True when asyncpg refused the statement before sending it, because its connection broke while idle.

    A backend terminated while its connection waits in the pool sends a FATAL message, then closes the socket.
    asyncpg reads the message with no operation running and, until it has seen the close, the next statement on
    that connection fails with "cannot switch to state N; another operation (2) is in progress" before a byte
    is written (asyncpg then aborts the connection). The statement never ran: it may run on another connection.
    """
    return isinstance(exc, asyncpg.InternalClientError) and str(exc).startswith("cannot switch to state")


_SAVE_REPLY = """
WITH c AS (
    UPDATE lc_conversations SET message_count = message_count + 1, updated_at = $7
    WHERE conversation_id = $1 AND user_id = $2 AND life = $3
    RETURNING message_count - 1 AS pos
)
INSERT INTO lc_messages (conversation_id, pos, role, content, chars, meta)
SELECT $1, c.pos, $4, $5, char_length($5), $6 FROM c
RETURNING pos
"""

_CREATE = """
INSERT INTO lc_conversations AS c (conversation_id, user_id, life, title, title_explicit, created_at, updated_at)
VALUES ($1, $2, nextval('lc_lives'), coalesce($3, 'New chat'), $3::text IS NOT NULL, $4, $4)
ON CONFLICT (conversation_id) DO UPDATE SET
    title = coalesce($3, c.title),
    title_explicit = c.title_explicit OR $3::text IS NOT NULL,
    updated_at = $4
WHERE c.user_id = $2
RETURNING title
"""

_READ = """
WITH c AS (
    SELECT least(message_count, coalesce($3::integer, message_count)) AS e FROM lc_conversations
    WHERE conversation_id = $1 AND user_id = $2
)
SELECT m.pos, m.role, m.content, m.meta FROM lc_messages m, c
WHERE m.conversation_id = $1 AND m.pos < c.e AND m.pos >= c.e - coalesce($4::integer, c.e)
ORDER BY m.pos
"""

# Messages from position $3 on dropped, in a new life, when the conversation is the user's and holds more.
_TRUNCATE = """
WITH c AS (
    UPDATE lc_conversations SET message_count = $3, updated_at = $4, life = nextval('lc_lives')
    WHERE conversation_id = $1 AND user_id = $2 AND message_count > $3
    RETURNING conversation_id
)
DELETE FROM lc_messages m USING c WHERE m.conversation_id = c.conversation_id AND m.pos >= $3
"""

_LIST = """
SELECT conversation_id, title, created_at, updated_at, message_count FROM lc_conversations
WHERE user_id = $1 ORDER BY updated_at DESC LIMIT $2
"""


class PostgresStore:
    """Conversations in PostgreSQL through a pool of asyncpg connections; ownership checked in each statement."""

    persistent = True

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        statement_cache_size: int = 100,
        timeout: float = 5.0,
        synchronous_commit: str = "off",
    ) -> None:
        self.url = url
        self.min_size = max(0, min_size)
        self.max_size = max(1, max_size, self.min_size)
        self.statement_cache_size = statement_cache_size
        self.timeout = timeout
        self.synchronous_commit = synchronous_commit
        self._pool: asyncpg.Pool | None = None
        # Cached windows are never changed in place (turns of one conversation may overlap): each turn makes a
        # new one from a copy.
        self._cache = WindowCache(_CACHE_FROM)

    def describe(self) -> str:
        """Host, port and database (never the password)."""
        parts = urlsplit(self.url)
        database = parts.path.lstrip("/") or "(default)"
        return f"in PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}/{database}"

    async def open(self) -> None:
        """Create the pool and bring the schema up to date (one instance at a time)."""
        self._pool = await asyncpg.create_pool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            statement_cache_size=self.statement_cache_size,
            command_timeout=self.timeout,
            timeout=self.timeout,
            server_settings={"synchronous_commit": self.synchronous_commit},
            reset=_keep_session,
        )
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            await migrate(connection)

    async def close(self) -> None:
        """Close the pool."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _run(self, method: str, sql: str, *args: Any, repeatable: bool = False) -> Any:
        """`connection.<method>(sql, *args)` on a pooled connection; a connection fault becomes StoreUnavailable.

        One more try on another connection follows a fault that cannot have written anything (no connection was
        had, or the one had broke in the pool: `_never_sent`), or any fault when running the statement twice
        changes nothing (`repeatable`). A timed-out wait is not repeated: the caller would wait twice as long.
        """
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("PostgresStore is not open")
        for last in (False, True):
            try:
                connection = await pool.acquire(timeout=self.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, starting up, shutting down, cut while connecting, timed out
                if last or isinstance(exc, asyncio.TimeoutError):
                    raise StoreUnavailable(type(exc).__name__) from None
                continue
            try:
                return await getattr(connection, method)(sql, *args)
            except _GONE as exc:
                if last or isinstance(exc, asyncio.TimeoutError) or not (repeatable or _never_sent(exc)):
                    raise StoreUnavailable(type(exc).__name__) from None
            finally:
                try:
                    await pool.release(connection)
                except Exception:  # noqa: BLE001 - a broken connection: the pool replaces it on a later acquire
                    pass
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        """Run a trivial query."""
        await self._run("fetchval", "SELECT 1", repeatable=True)

    @to_the_end
    async def start_turn(
        self, user_id: str, conversation_id: str, incoming: Sequence[StoredMessage], max_context_chars: int
    ) -> TurnStart:
        """Merge, commit the new messages and return the capped context: one statement, one round trip."""
        if is_reserved_for_other(conversation_id, user_id):
            raise ConversationForbidden(conversation_id)
        cached = self._cache.get(conversation_id)
        known = cached if cached is not None and cached.cap == max_context_chars else None
        rows = await self._run(
            "fetch",
            "SELECT * FROM lc_start_turn($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            user_id,
            conversation_id,
            [m.role for m in incoming],
            [m.content for m in incoming],
            [_encode_meta(m.meta).decode() if m.meta else None for m in incoming],
            title_for(incoming),
            max_context_chars,
            time.time(),
            known.life if known is not None else 0,
            known.count if known is not None else 0,
        )
        head = rows[0]
        kind, life, title = str(head["kind"]), int(head["life"]), str(head["title"])
        if kind == "forbidden":
            raise ConversationForbidden(conversation_id)
        if kind == "prefix":  # the client resent the conversation: its copies, but the stored ones with parts
            window = ContextWindow(max_context_chars, life)
            kept = [(int(row["pos"]), _message(row)) for row in rows[1:]]
            window.extend(with_stored_parts(incoming, [(i, m) for i, m in kept if has_parts(m.meta)]))
        else:
            window = known.copy() if kind == "delta" and known is not None else ContextWindow(max_context_chars, life)
            window.extend([_message(row) for row in rows[1:]])
            window.extend(incoming)
        window.count = (0 if kind == "prefix" else int(head["pos"])) + len(incoming)
        window.life = life
        self._remember(conversation_id, window)
        return TurnStart(window.messages(), title or NEW_CHAT, life)

    @to_the_end
    async def save_reply(self, user_id: str, conversation_id: str, life: int, reply: StoredMessage) -> None:
        """Append the reply when the conversation is still the user's, in that life; else ConversationGone."""
        meta = _encode_meta(reply.meta).decode() if reply.meta else None
        position = await self._run(
            "fetchval", _SAVE_REPLY, conversation_id, user_id, life, reply.role, reply.content, meta, time.time()
        )
        if position is None:
            self._cache.forget(conversation_id)
            raise ConversationGone(conversation_id)

    @to_the_end
    async def truncate(self, user_id: str, conversation_id: str, keep: int) -> None:
        """Keep the first `keep` messages, in a new life, when the conversation is the user's and holds more."""
        # Repeatable: a second run finds no more than `keep` messages, and changes nothing.
        await self._run("execute", _TRUNCATE, conversation_id, user_id, max(0, keep), time.time(), repeatable=True)
        self._cache.forget(conversation_id)

    @to_the_end
    async def create(self, user_id: str, conversation_id: str, title: str | None) -> str:
        """Create the conversation (or touch it when it is already the user's) and return its title."""
        if is_reserved_for_other(conversation_id, user_id):
            raise ConversationForbidden(conversation_id)
        # Repeatable: a second run over a first that was written leaves the same row and gives the same title.
        kept = await self._run("fetchval", _CREATE, conversation_id, user_id, title, time.time(), repeatable=True)
        if kept is None:
            raise ConversationForbidden(conversation_id)
        return str(kept)

    @to_the_end
    async def delete(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation (its messages go with it) when it is the user's."""
        await self._run(
            "execute",
            "DELETE FROM lc_conversations WHERE conversation_id = $1 AND user_id = $2",
            conversation_id,
            user_id,
            repeatable=True,
        )
        self._cache.forget(conversation_id)

    @to_the_end
    async def clear(self, user_id: str) -> None:
        """Delete all of the user's conversations."""
        await self._run("execute", "DELETE FROM lc_conversations WHERE user_id = $1", user_id, repeatable=True)

    async def list_conversations(self, user_id: str, limit: int) -> list[ConversationInfo]:
        """The user's conversations, most recently updated first."""
        rows = await self._run("fetch", _LIST, user_id, limit, repeatable=True)
        return [ConversationInfo(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]

    async def history(self, user_id: str) -> list[StoredMessage]:
        """The messages of the user's default conversation."""
        return (await self.read(user_id, default_conversation_id(user_id))).messages

    async def read(
        self, user_id: str, conversation_id: str, limit: int | None = None, before: int | None = None
    ) -> ConversationPage:
        """A page of the conversation's messages (all by default); empty when unknown or foreign."""
        before = None if before is None else max(0, before)
        rows = await self._run("fetch", _READ, conversation_id, user_id, before, limit, repeatable=True)
        messages = [_message(row) for row in rows]
        return ConversationPage(messages, int(rows[0]["pos"]) if rows else 0)

    def _remember(self, conversation_id: str, window: ContextWindow) -> None:
        """Keep a conversation's window, unless a later turn of it already finished here."""
        current = self._cache.get(conversation_id)
        if current is not None and current.life == window.life and current.count > window.count:
            return
        self._cache.keep(conversation_id, window)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool (saves asyncpg's reset query, a round trip).

    Every operation is one autocommit statement (the migration's transaction ends before release); no
    session setting, cursor, LISTEN or session-level lock is ever left behind. asyncpg still rolls back a
    transaction left open by a cancelled query before this hook runs.
    """


async def migrate(connection: asyncpg.Connection) -> int:
    """Run the migrations this database lacks (the caller holds the advisory lock); return the version."""
    await connection.execute(VERSION_TABLE)
    version = await connection.fetchval("SELECT max(version) FROM lc_schema_version")
    current = int(version or 0)
    for step in range(current, len(MIGRATIONS)):
        await connection.execute(MIGRATIONS[step])
        await connection.execute("INSERT INTO lc_schema_version (version) VALUES ($1)", step + 1)
    return len(MIGRATIONS)


def _message(row: Any) -> StoredMessage:
    """A message row as a message."""
    meta = row["meta"]
    return StoredMessage(str(row["role"]), str(row["content"]), _decode_meta(meta) if meta else None)
