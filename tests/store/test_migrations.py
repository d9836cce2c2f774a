"""Schemas: created and migrated at start-up (PostgreSQL: one instance at a time)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from lean_chat.store.base import StoredMessage
from lean_chat.store.postgres import PostgresStore
from lean_chat.store.postgres_schema import MIGRATIONS
from lean_chat.store.sqlite import SQLiteStore
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.anyio

# The SQLite schema before conversation lives (version 0 files in the field).
_VERSION_0 = """
CREATE TABLE lc_conversations (conversation_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, title TEXT NOT NULL,
    title_explicit INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE lc_messages (conversation_id TEXT NOT NULL, idx INTEGER NOT NULL, role TEXT NOT NULL,
    content TEXT NOT NULL, meta TEXT, PRIMARY KEY (conversation_id, idx)) WITHOUT ROWID;
INSERT INTO lc_conversations VALUES ('default:old', 'old', 'from before', 0, 1.0, 1.0, 2);
INSERT INTO lc_messages VALUES ('default:old', 0, 'user', 'from before', NULL);
INSERT INTO lc_messages VALUES ('default:old', 1, 'assistant', 'kept', NULL);
"""


async def test_an_old_sqlite_file_is_migrated_and_keeps_its_history(tmp_path: Path) -> None:
    path = str(tmp_path / "old.sqlite3")
    with sqlite3.connect(path) as db:
        db.executescript(_VERSION_0)
    db.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        start = await store.start_turn("old", "default:old", [StoredMessage("user", "and now")], 1000)
        assert [m.content for m in start.context] == ["from before", "kept", "and now"]
        assert start.title == "from before"
        await store.save_reply("old", "default:old", start.life, StoredMessage("assistant", "new reply"))
        assert [m.content for m in await store.history("old")] == ["from before", "kept", "and now", "new reply"]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
    db.close()


@pytest.mark.postgres
def test_instances_starting_at_once_migrate_once() -> None:
    async def start_four(url: str) -> list[int]:
        stores = [PostgresStore(url, min_size=1, max_size=2) for _ in range(4)]
        await asyncio.gather(*(store.open() for store in stores))
        for store in stores:
            await store.ping()
            await store.close()
        connection = await asyncpg.connect(url)
        try:
            return [row[0] for row in await connection.fetch("SELECT version FROM lc_schema_version ORDER BY 1")]
        finally:
            await connection.close()

    with temporary_database() as url:
        assert asyncio.run(start_four(url)) == list(range(1, len(MIGRATIONS) + 1))


# A stand-in for an older lc_start_turn (same signature); migration 3 must replace it.
_OLD_START_TURN = """
CREATE OR REPLACE FUNCTION lc_start_turn(
    p_user text, p_cid text, p_roles text[], p_contents text[], p_metas text[], p_title text,
    p_cap integer, p_now double precision, p_known_life bigint, p_known_count integer
) RETURNS TABLE (kind text, life bigint, title text, pos integer, role text, content text, meta text)
LANGUAGE plpgsql AS $fn$ BEGIN RAISE EXCEPTION 'the version 2 body'; END $fn$
"""


@pytest.mark.postgres
def test_a_version_2_database_gets_the_turn_function_that_keeps_stored_parts() -> None:
    parts = [{"type": "reasoning", "text": "r", "state": {"provider": "p", "model": "m", "data": {"signature": "s"}}}]
    answer = StoredMessage("assistant", "a", {"parts": parts})

    async def run(url: str) -> tuple[list[int], list[StoredMessage]]:
        store = PostgresStore(url, min_size=1, max_size=2)
        await store.open()
        start = await store.start_turn("v", "c", [StoredMessage("user", "q")], 1000)
        await store.save_reply("v", "c", start.life, answer)
        await store.close()
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("DELETE FROM lc_schema_version WHERE version > 2")
            await connection.execute(_OLD_START_TURN)
        finally:
            await connection.close()
        store = PostgresStore(url, min_size=1, max_size=2)
        await store.open()
        try:
            resent = [StoredMessage("user", "q"), StoredMessage("assistant", "a"), StoredMessage("user", "more")]
            context = (await store.start_turn("v", "c", resent, 1000)).context
        finally:
            await store.close()
        connection = await asyncpg.connect(url)
        try:
            versions = [row[0] for row in await connection.fetch("SELECT version FROM lc_schema_version ORDER BY 1")]
        finally:
            await connection.close()
        return versions, context

    with temporary_database() as url:
        versions, context = asyncio.run(run(url))
    assert len(MIGRATIONS) == 3 and versions == [1, 2, 3]
    assert context == [StoredMessage("user", "q"), answer, StoredMessage("user", "more")]
