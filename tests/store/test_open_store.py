"""`open_store`: the store chosen by the URL's scheme (or `sqlite_path`, or `lean-chat serve --database-url`), the
optional extra named when missing."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from lean_chat.config import Settings
from lean_chat.store import open_store
from lean_chat.store.memory import MemoryStore
from lean_chat.store.postgres import PostgresStore
from lean_chat.store.sqlite import SQLiteStore
from tests.support.apps import stream_body
from tests.support.frames import check_grammar, parse_frames
from tests.support.postgres import temporary_database
from tests.support.server_process import environment, serving


@pytest.mark.postgres
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


@pytest.mark.postgres
def test_serve_with_database_url_keeps_history_in_postgres(tmp_path: Path) -> None:
    with temporary_database() as url:
        database_url = url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
        with serving(tmp_path, "--no-demo", "--database-url", database_url, env=environment()) as served:
            with httpx.Client(base_url=served.url, timeout=10) as http:
                answer = http.post("/chat/stream", json=stream_body("cli", "kept in postgres"))
                assert check_grammar(parse_frames(answer.content)).event == "done"
            assert served.interrupt() == 0
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
