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
