"""History: the merge rule, the default conversation per user, titles, and append-only writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lean_chat.store.base import StoredMessage
from lean_chat.store.history import merge_history, title_for
from tests.support.apps import FAST, in_process, stream_body, turn
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.upstreams import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio


def msg(role: str, content: str) -> StoredMessage:
    """A stored message without meta."""
    return StoredMessage(role, content, None)


def pairs(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, content) of each message."""
    return [(m["role"], m["content"]) for m in messages]


async def say(http: httpx.AsyncClient, user: str, messages: list[tuple[str, str]], cid: str | None = None) -> str:
    """Stream one turn with these request messages and return the reply."""
    params: dict[str, Any] = {"mock": FAST}
    if cid is not None:
        params["conversationId"] = cid
    body = {"userId": user, "messages": [{"role": r, "content": c} for r, c in messages], "params": params}
    done = check_grammar(parse_frames((await turn(http, body)).content))
    assert done.event == "done"
    return str(done.data["message"]["content"])


async def history(http: httpx.AsyncClient, user: str) -> list[dict[str, Any]]:
    """The user's default conversation."""
    response = await http.get("/chat/history", params={"userId": user})
    assert response.status_code == 200
    return list(response.json()["messages"])


# The merge rule itself


def test_merge_empty_store_takes_the_request() -> None:
    incoming = [msg("user", "a")]
    assert merge_history([], incoming) == (incoming, incoming)


def test_merge_prefix_takes_the_request_and_only_its_tail_is_new() -> None:
    stored = [msg("user", "a"), msg("assistant", "b")]
    incoming = [msg("user", "a"), msg("assistant", "b"), msg("user", "c")]
    assert merge_history(stored, incoming) == (incoming, [msg("user", "c")])


def test_merge_identical_lists_add_nothing() -> None:
    stored = [msg("user", "a")]
    assert merge_history(stored, [msg("user", "a")]) == ([msg("user", "a")], [])


@pytest.mark.parametrize(
    "incoming",
    [
        [msg("user", "c")],
        [msg("user", "a")],  # shorter than what is stored
        [msg("system", "a"), msg("assistant", "b"), msg("user", "c")],  # same text, other role
        [msg("user", "A"), msg("assistant", "b"), msg("user", "c")],  # other text
    ],
    ids=["newest only", "shorter", "role differs", "content differs"],
)
def test_merge_non_prefix_appends(incoming: list[StoredMessage]) -> None:
    stored = [msg("user", "a"), msg("assistant", "b")]
    assert merge_history(stored, incoming) == (stored + incoming, incoming)


def test_merge_ignores_meta() -> None:
    stored = [StoredMessage("user", "a", {"x": 1})]
    incoming = [msg("user", "a"), msg("user", "b")]
    assert merge_history(stored, incoming)[1] == [msg("user", "b")]


def test_merge_prefix_takes_the_stored_copies_of_messages_with_parts() -> None:
    # A resent reply lacks the parts' provider state: the context has the stored copy (the others: the client's).
    with_parts = StoredMessage("assistant", "b", {"parts": [{"type": "text", "text": "b", "state": {"x": 1}}]})
    stored = [StoredMessage("user", "a", {"x": 1}), with_parts]
    incoming = [msg("user", "a"), msg("assistant", "b"), msg("user", "c")]
    assert merge_history(stored, incoming) == ([msg("user", "a"), with_parts, msg("user", "c")], [msg("user", "c")])


# Over HTTP


async def test_full_history_each_turn_is_not_duplicated(client: httpx.AsyncClient) -> None:
    first = await say(client, "p", [("user", "one")])
    second = await say(client, "p", [("user", "one"), ("assistant", first), ("user", "two")])
    assert pairs(await history(client, "p")) == [
        ("user", "one"),
        ("assistant", first),
        ("user", "two"),
        ("assistant", second),
    ]


async def test_newest_message_only_is_appended(client: httpx.AsyncClient) -> None:
    first = await say(client, "n", [("user", "one")])
    second = await say(client, "n", [("user", "two")])
    assert pairs(await history(client, "n")) == [
        ("user", "one"),
        ("assistant", first),
        ("user", "two"),
        ("assistant", second),
    ]


async def test_empty_request_messages(client: httpx.AsyncClient) -> None:
    reply = await say(client, "e", [])
    assert reply.startswith("Mock reply (mock): ")
    assert pairs(await history(client, "e")) == [("assistant", reply)]


async def test_meta_is_kept(client: httpx.AsyncClient) -> None:
    body = stream_body("meta", "hi")
    body["messages"][0]["meta"] = {"attachments": ["a.png"], "n": 1}
    await turn(client, body)
    messages = await history(client, "meta")
    assert messages[0] == {"role": "user", "content": "hi", "meta": {"attachments": ["a.png"], "n": 1}}
    assert messages[1]["meta"] is None


async def test_default_conversation_is_per_user(client: httpx.AsyncClient) -> None:
    for user in ("alice", "bob"):
        done = check_grammar(parse_frames((await turn(client, stream_body(user, f"I am {user}"))).content))
        assert done.data["conversationId"] == f"default:{user}"
    assert pairs(await history(client, "alice"))[0] == ("user", "I am alice")
    assert pairs(await history(client, "bob"))[0] == ("user", "I am bob")
    assert await history(client, "carol") == []


async def test_named_conversation_is_not_the_default(client: httpx.AsyncClient) -> None:
    done = check_grammar(
        parse_frames((await turn(client, stream_body("x", "side", conversation_id=" side-1 "))).content)
    )
    assert done.data["conversationId"] == "side-1"
    assert await history(client, "x") == []
    shown = (await client.get("/chat/conversation", params={"userId": "x", "conversationId": "side-1"})).json()
    assert pairs(shown["messages"])[0] == ("user", "side")


async def title_of(http: httpx.AsyncClient, user: str, cid: str) -> str:
    """The title the conversation list shows."""
    rows = (await http.get("/chat/conversations", params={"userId": user})).json()["conversations"]
    return next(str(r["title"]) for r in rows if r["conversationId"] == cid)


@pytest.mark.parametrize(
    ("messages", "title"),
    [
        ([("user", "Short question")], "Short question"),
        ([("user", "x" * 60)], "x" * 60),
        ([("user", "y" * 61)], "y" * 60 + "…"),
        ([("user", "  line one\nline two\n")], "line one line two"),
        ([("system", "be brief"), ("user", "real first"), ("user", "second")], "real first"),
        ([("user", "   ")], "New chat"),
        ([("assistant", "hello")], "New chat"),
    ],
    ids=["short", "60 exactly", "61 cut", "newlines", "first user message", "blank", "no user message"],
)
async def test_titles(client: httpx.AsyncClient, messages: list[tuple[str, str]], title: str) -> None:
    await say(client, "t", messages, cid="c")
    assert await title_of(client, "t", "c") == title


async def test_title_comes_from_the_first_turn(client: httpx.AsyncClient) -> None:
    await say(client, "t2", [("user", "first topic")], cid="c")
    await say(client, "t2", [("user", "second topic")], cid="c")
    assert await title_of(client, "t2", "c") == "first topic"


async def test_explicit_title_is_kept(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/chat/conversation/create", json={"userId": "k", "conversationId": "c", "title": " Plans "}
    )
    assert created.json()["title"] == "Plans"
    await say(client, "k", [("user", "something else entirely")], cid="c")
    assert await title_of(client, "k", "c") == "Plans"


async def test_created_without_title_takes_the_first_message(client: httpx.AsyncClient) -> None:
    created = await client.post("/chat/conversation/create", json={"userId": "k2", "conversationId": "c"})
    assert created.json()["title"] == "New chat"
    await say(client, "k2", [("user", "what the chat is about")], cid="c")
    assert await title_of(client, "k2", "c") == "what the chat is about"


def test_title_for_directly() -> None:
    assert title_for([]) == "New chat"
    assert title_for([msg("user", "é" * 61)]) == "é" * 60 + "…"


async def test_writes_are_append_only(client: httpx.AsyncClient, sqlite_path: str) -> None:
    await say(client, "ao", [("user", "start")])
    # Record every change the app makes to stored messages from now on.
    with sqlite3.connect(sqlite_path) as db:
        db.execute("CREATE TABLE audit (what TEXT, idx INTEGER)")
        for what, row in (("insert", "NEW"), ("update", "OLD"), ("delete", "OLD")):
            db.execute(
                f"CREATE TRIGGER audit_{what} AFTER {what.upper()} ON lc_messages"
                f" BEGIN INSERT INTO audit VALUES ('{what}', {row}.idx); END"
            )
    stored = await history(client, "ao")
    full = [(m["role"], m["content"]) for m in stored] + [("user", "next")]
    await say(client, "ao", full)
    await say(client, "ao", [("user", "only the newest")])
    with sqlite3.connect(sqlite_path) as db:
        audit = db.execute("SELECT what, idx FROM audit ORDER BY rowid").fetchall()
    assert audit == [("insert", 2), ("insert", 3), ("insert", 4), ("insert", 5)]
    assert len(await history(client, "ao")) == 6


async def test_provider_sees_the_merged_context(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    fake = FakeOpenAI(Reply(tokens=["first", " answer"]), Reply(tokens=["second", " answer"]))
    upstream = live_server(fake)
    async with in_process(sqlite_path=sqlite_path, **fake.options(upstream.url)) as http:
        for text in ("one", "two"):
            body = stream_body("ctx", text, model="gpt-4.1")
            body["messages"].insert(0, {"role": "system", "content": "be brief"})
            done = check_grammar(parse_frames((await turn(http, body)).content))
            assert done.data["provider"] == "openai:gpt-4.1"
        # Not a prefix of what was stored: the context is stored + incoming, kept with the reply; the provider
        # sees it with its system messages joined in front (as the reference sends them).
        context = [
            ("system", "be brief"),
            ("user", "one"),
            ("assistant", "first answer"),
            ("system", "be brief"),
            ("user", "two"),
        ]
        assert pairs(await history(http, "ctx")) == [*context, ("assistant", "second answer")]
        seen = [(m["role"], m["content"]) for m in fake.received[-1].body["messages"]]
        assert seen == [
            ("system", "be brief\n\nbe brief"),
            ("user", "one"),
            ("assistant", "first answer"),
            ("user", "two"),
        ]
