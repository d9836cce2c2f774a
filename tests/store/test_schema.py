"""Schemas: created and migrated at start-up (PostgreSQL: one instance at a time), and the choice of store by URL."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from lean_chat.config import Settings
from lean_chat.store import open_store
from lean_chat.store.base import StoredMessage
from lean_chat.store.memory import MemoryStore
from lean_chat.store.postgres import PostgresStore
from lean_chat.store.postgres_schema import MIGRATIONS
from lean_chat.store.sqlite import SQLiteStore
from tests.apps import stream_body
from tests.frames import check_grammar, parse_frames
from tests.store.postgres import temporary_database

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


def test_the_store_is_chosen_by_the_url_scheme(tmp_path: Path, postgres_url: str) -> None:
    assert isinstance(open_store(Settings(database_url="memory://")), MemoryStore)
    chosen = open_store(Settings(database_url=f"sqlite:///{tmp_path}/a.sqlite3"))
    assert isinstance(chosen, SQLiteStore) and chosen.path == f"{tmp_path}/a.sqlite3"
    assert isinstance(open_store(Settings(sqlite_path=f"{tmp_path}/b.sqlite3")), SQLiteStore)
    assert isinstance(open_store(Settings(sqlite_path="")), MemoryStore)
    postgres = open_store(Settings(database_url="postgresql://lc:secret@db.example:6432/chat"))
    assert isinstance(postgres, PostgresStore)
    assert postgres.describe() == "in PostgreSQL at db.example:6432/chat"  # no password
    from_env = Settings.from_env({"LEAN_CHAT_DATABASE_URL": postgres_url, "LEAN_CHAT_DATABASE_POOL_MAX_SIZE": "3"})
    chosen_env = open_store(from_env)
    assert isinstance(chosen_env, PostgresStore) and chosen_env.max_size == 3
    with pytest.raises(ValueError, match="unknown scheme"):
        open_store(Settings(database_url="mysql://x/y"))


def test_a_postgres_url_without_asyncpg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "lean_chat.store.postgres")
    with pytest.raises(ImportError, match=r"lean-chat\[postgres\]"):
        open_store(Settings(database_url="postgresql://127.0.0.1/test"))


def test_serve_with_database_url_keeps_history_in_postgres(tmp_path: Path) -> None:
    from tests.conftest import free_port
    from tests.test_cli import Served, environment

    with temporary_database() as url:
        port = free_port()
        command = [sys.executable, "-m", "lean_chat", "serve", "--port", str(port), "--no-demo"]
        command += ["--database-url", url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")]
        process = subprocess.Popen(
            command, cwd=tmp_path, env=environment(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        served = Served(process, f"http://127.0.0.1:{port}")
        try:
            served.wait_ready()
            with httpx.Client(base_url=served.url, timeout=10) as http:
                answer = http.post("/chat/stream", json=stream_body("cli", "kept in postgres"))
                assert check_grammar(parse_frames(answer.content)).event == "done"
            assert served.interrupt() == 0
        finally:
            served.close()
        ready = [line for line in served.lines if "lean_chat ready" in line]
        assert len(ready) == 1 and f"in PostgreSQL at 127.0.0.1:5432/{url.rsplit('/', 1)[1]}" in ready[0]
        assert "hunter2" not in served.log
        assert not (tmp_path / "chat_history.sqlite3").exists()

        async def count() -> int:
            connection = await asyncpg.connect(url)
            try:
                return int(await connection.fetchval("SELECT count(*) FROM lc_messages"))
            finally:
                await connection.close()

        assert asyncio.run(count()) == 2
