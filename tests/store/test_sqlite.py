"""SQLite persistence: history survives a restart, WAL mode, user messages saved before the reply, I/O off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable

import httpx
import pytest

from lean_chat import Settings, create_app
from lean_chat.app import build_app
from lean_chat.store.sqlite import SQLiteStore
from tests.support.apps import in_process, stream_body, turn
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.sqlite_rows import stored_rows

pytestmark = pytest.mark.anyio


def rows(path: str, conversation_id: str) -> list[tuple[str, str]]:
    """(role, content) of a conversation's stored messages, read by a separate connection."""
    return [(role, content) for role, content, _ in stored_rows(path, conversation_id)]


async def test_history_survives_a_restart(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path) as http:
        done = check_grammar(parse_frames((await turn(http, stream_body("r", "remember me"))).content))
        await turn(http, stream_body("r", "side", conversation_id="side"))
        await http.post("/chat/conversation/create", json={"userId": "r", "conversationId": "titled", "title": "Kept"})
    async with in_process(sqlite_path=sqlite_path) as http:
        history = (await http.get("/chat/history", params={"userId": "r"})).json()["messages"]
        assert [(m["role"], m["content"]) for m in history] == [
            ("user", "remember me"),
            ("assistant", done.data["message"]["content"]),
        ]
        listed = (await http.get("/chat/conversations", params={"userId": "r"})).json()["conversations"]
        assert {r["conversationId"]: r["title"] for r in listed} == {
            "default:r": "remember me",
            "side": "side",
            "titled": "Kept",
        }
        # Turns go on where they left off, and ownership holds across the restart.
        await turn(http, stream_body("r", "and again"))
        assert len((await http.get("/chat/history", params={"userId": "r"})).json()["messages"]) == 4
        other = await turn(http, stream_body("intruder", "x", conversation_id="side"))
        assert parse_frames(other.content)[0].data["error"]["code"] == "conversation_forbidden"


async def test_file_is_in_wal_mode(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path) as http:
        await turn(http, stream_body("w", "hi"))
        with sqlite3.connect(sqlite_path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_folders_are_created(tmp_path: object) -> None:
    path = f"{tmp_path}/deep/er/history.sqlite3"
    async with in_process(sqlite_path=path) as http:
        await turn(http, stream_body("f", "hi"))
    assert rows(path, "default:f")[0] == ("user", "hi")


def test_user_messages_are_saved_before_the_reply(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    server = live_server(create_app(sqlite_path=sqlite_path))
    body = stream_body("early", "saved first", tokenDelayMs=10, targetChars=250)
    with (
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream("POST", "/chat/stream", json=body) as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_bytes()
        first = next(chunks)
        assert first.startswith(b"event: token\n")
        # The stream is still running: the user's message is stored, the reply is not.
        assert rows(sqlite_path, "default:early") == [("user", "saved first")]
        rest = b"".join(chunks)
    done = check_grammar(parse_frames(first + rest))
    assert rows(sqlite_path, "default:early") == [
        ("user", "saved first"),
        ("assistant", done.data["message"]["content"]),
    ]


async def test_store_io_never_runs_on_the_event_loop_thread(sqlite_path: str) -> None:
    store = SQLiteStore(sqlite_path)
    app = build_app(Settings(sqlite_path=sqlite_path), store=store)
    threads: list[int] = []
    async with in_process(app) as http:
        await store.run(lambda db: db.set_trace_callback(lambda statement: threads.append(threading.get_ident())))
        await turn(http, stream_body("io", "hello"))
        await turn(http, stream_body("io", "side", conversation_id="c"))
        await http.get("/chat/history", params={"userId": "io"})
        await http.get("/chat/conversations", params={"userId": "io"})
        await http.get("/chat/conversation", params={"userId": "io", "conversationId": "c"})
        await http.post("/chat/conversation/create", json={"userId": "io", "title": "t"})
        await http.post("/chat/conversation/delete", json={"userId": "io", "conversationId": "c"})
        await http.post("/chat/clear", json={"userId": "io"})
        loop_thread = threading.get_ident()
        assert asyncio.get_running_loop() is not None
    assert len(threads) >= 10
    assert loop_thread not in threads


async def test_concurrent_turns_of_one_user_keep_every_message(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path) as http:
        await asyncio.gather(*(turn(http, stream_body("many", f"question {i}")) for i in range(8)))
        stored = rows(sqlite_path, "default:many")
    assert len(stored) == 16
    assert sorted(c for r, c in stored if r == "user") == sorted(f"question {i}" for i in range(8))


async def test_long_conversation_reads_stay_right_after_delete_clear_and_restart(sqlite_path: str) -> None:
    expected: list[tuple[str, str]] = []
    async with in_process(sqlite_path=sqlite_path) as http:
        for i in range(20):
            done = check_grammar(
                parse_frames((await turn(http, stream_body("long", f"q{i}", conversation_id="c"))).content)
            )
            expected += [("user", f"q{i}"), ("assistant", done.data["message"]["content"])]
        shown = (await http.get("/chat/conversation", params={"userId": "long", "conversationId": "c"})).json()
        assert [(m["role"], m["content"]) for m in shown["messages"]] == expected
        forgets: tuple[Callable[[], Awaitable[httpx.Response]], ...] = (
            lambda: http.post("/chat/conversation/delete", json={"userId": "long", "conversationId": "c"}),
            lambda: http.post("/chat/clear", json={"userId": "long"}),
        )
        for forget in forgets:
            for i in range(17):  # long enough to be cached again
                await turn(http, stream_body("long", f"again {i}", conversation_id="c"))
            await forget()
            await turn(http, stream_body("long", "fresh start", conversation_id="c"))
            assert [r for r, _ in rows(sqlite_path, "c")] == ["user", "assistant"]
            # The next turn's context is the fresh conversation only (a stale cache would bring back old turns,
            # and the title would name the first of them).
            await turn(http, stream_body("long", "and then", conversation_id="c"))
            assert [c for r, c in rows(sqlite_path, "c") if r == "user"] == ["fresh start", "and then"]
            listed = (await http.get("/chat/conversations", params={"userId": "long"})).json()["conversations"]
            assert [(r["title"], r["messageCount"]) for r in listed] == [("fresh start", 4)]
    async with in_process(sqlite_path=sqlite_path) as http:
        await turn(http, stream_body("long", "after restart", conversation_id="c"))
        assert [c for r, c in rows(sqlite_path, "c") if r == "user"] == ["fresh start", "and then", "after restart"]
