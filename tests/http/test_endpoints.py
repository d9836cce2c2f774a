"""Every endpoint's JSON shape, with SQLite history and with persistence disabled (`sqlite_path=""`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.apps import in_process, reply_to

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "memory"])
async def mode_client(request: pytest.FixtureRequest, sqlite_path: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in each storage mode."""
    async with in_process(sqlite_path=sqlite_path if request.param == "sqlite" else "") as http:
        http.headers["x-mode"] = request.param
        yield http


def is_sqlite(http: httpx.AsyncClient) -> bool:
    """True for the SQLite-backed app of `mode_client`."""
    mode: str | None = http.headers.get("x-mode")
    return mode == "sqlite"


async def test_history_shape(mode_client: httpx.AsyncClient) -> None:
    empty = await mode_client.get("/chat/history", params={"userId": "h"})
    assert empty.status_code == 200
    assert empty.headers["content-type"] == "application/json"
    assert empty.json() == {"userId": "h", "messages": []}
    done = await reply_to(mode_client, "h", "hello")
    assert (await mode_client.get("/chat/history", params={"userId": "h"})).json() == {
        "userId": "h",
        "messages": [
            {"role": "user", "content": "hello", "meta": None},
            {"role": "assistant", "content": done["message"]["content"], "meta": None},
        ],
    }


async def test_clear_shape_and_effect(mode_client: httpx.AsyncClient) -> None:
    await reply_to(mode_client, "c", "hello")
    await reply_to(mode_client, "c", "side", cid="c-side")
    await reply_to(mode_client, "other", "keep me")
    response = await mode_client.post("/chat/clear", json={"userId": "c"})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "userId": "c"}
    assert (await mode_client.get("/chat/history", params={"userId": "c"})).json()["messages"] == []
    assert (await mode_client.get("/chat/conversations", params={"userId": "c"})).json()["conversations"] == []
    assert len((await mode_client.get("/chat/history", params={"userId": "other"})).json()["messages"]) == 2
    # Clearing again is fine.
    assert (await mode_client.post("/chat/clear", json={"userId": "c"})).json() == {"ok": True, "userId": "c"}


async def test_conversations_shape(client: httpx.AsyncClient) -> None:
    before = int(time.time())
    await reply_to(client, "l", "first chat", cid="a")
    await reply_to(client, "l", "second chat", cid="b")
    response = await client.get("/chat/conversations", params={"userId": "l"})
    assert response.status_code == 200
    body = response.json()
    assert body["userId"] == "l"
    rows = body["conversations"]
    assert [r["conversationId"] for r in rows] == ["b", "a"]
    for row, title in zip(rows, ["second chat", "first chat"], strict=True):
        assert set(row) == {"conversationId", "title", "createdAt", "updatedAt", "messageCount", "activeStreamId"}
        assert row["activeStreamId"] is None  # nothing streams into it now
        assert row["title"] == title
        assert row["messageCount"] == 2
        assert isinstance(row["createdAt"], int) and isinstance(row["updatedAt"], int)
        assert before <= row["createdAt"] <= row["updatedAt"] <= int(time.time())


async def test_conversations_newest_update_first_and_limit(client: httpx.AsyncClient) -> None:
    for cid in ("x", "y", "z"):
        await reply_to(client, "o", f"chat {cid}", cid=cid)
    await reply_to(client, "o", "back to x", cid="x")
    rows = (await client.get("/chat/conversations", params={"userId": "o"})).json()["conversations"]
    assert rows[0]["conversationId"] == "x" and rows[0]["messageCount"] == 4
    limited = (await client.get("/chat/conversations", params={"userId": "o", "limit": "2"})).json()
    assert [r["conversationId"] for r in limited["conversations"]] == [r["conversationId"] for r in rows[:2]]
    # Out-of-range limits are clamped, not refused.
    assert (
        len((await client.get("/chat/conversations", params={"userId": "o", "limit": "0"})).json()["conversations"])
        == 1
    )
    assert (
        len(
            (await client.get("/chat/conversations", params={"userId": "o", "limit": "100000"})).json()["conversations"]
        )
        == 3
    )


async def test_conversation_shape(mode_client: httpx.AsyncClient) -> None:
    done = await reply_to(mode_client, "v", "show me", cid="conv-1")
    response = await mode_client.get("/chat/conversation", params={"userId": "v", "conversationId": "conv-1"})
    assert response.status_code == 200
    expected = (
        [
            {"role": "user", "content": "show me", "meta": None},
            {"role": "assistant", "content": done["message"]["content"], "meta": None},
        ]
        if is_sqlite(mode_client)
        else []
    )
    assert response.json() == {"userId": "v", "conversationId": "conv-1", "messages": expected}
    unknown = await mode_client.get("/chat/conversation", params={"userId": "v", "conversationId": "nope"})
    assert unknown.json() == {"userId": "v", "conversationId": "nope", "messages": []}


async def test_create_shape(mode_client: httpx.AsyncClient) -> None:
    response = await mode_client.post("/chat/conversation/create", json={"userId": "n"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ok", "userId", "conversationId", "title"}
    assert body["ok"] is True and body["userId"] == "n" and body["title"] == "New chat"
    cid = body["conversationId"]
    assert cid == uuid.UUID(cid).hex and uuid.UUID(cid).version == 4
    named = await mode_client.post(
        "/chat/conversation/create", json={"userId": "n", "conversationId": " mine ", "title": "T"}
    )
    assert named.json() == {"ok": True, "userId": "n", "conversationId": "mine", "title": "T"}
    blank = await mode_client.post(
        "/chat/conversation/create", json={"userId": "n", "conversationId": "", "title": " "}
    )
    assert len(blank.json()["conversationId"]) == 32 and blank.json()["title"] == "New chat"
    listed = (await mode_client.get("/chat/conversations", params={"userId": "n"})).json()["conversations"]
    if is_sqlite(mode_client):
        assert {r["conversationId"] for r in listed} == {cid, "mine", blank.json()["conversationId"]}
        assert all(r["messageCount"] == 0 for r in listed)
    else:
        assert listed == []


async def test_create_twice_is_fine(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        response = await client.post("/chat/conversation/create", json={"userId": "t", "conversationId": "same"})
        assert response.json()["conversationId"] == "same"
    assert len((await client.get("/chat/conversations", params={"userId": "t"})).json()["conversations"]) == 1


async def test_delete_shape_and_idempotence(mode_client: httpx.AsyncClient) -> None:
    await reply_to(mode_client, "d", "bye", cid="gone")
    for _ in range(2):
        response = await mode_client.post("/chat/conversation/delete", json={"userId": "d", "conversationId": "gone"})
        assert response.status_code == 200
        assert response.json() == {"ok": True, "userId": "d", "conversationId": "gone"}
    shown = await mode_client.get("/chat/conversation", params={"userId": "d", "conversationId": "gone"})
    assert shown.json()["messages"] == []
    assert (await mode_client.get("/chat/conversations", params={"userId": "d"})).json()["conversations"] == []
    # The id is free again: a new turn starts from nothing.
    await reply_to(mode_client, "d", "again", cid="gone")
    if is_sqlite(mode_client):
        again = await mode_client.get("/chat/conversation", params={"userId": "d", "conversationId": "gone"})
        assert [m["content"] for m in again.json()["messages"]][0] == "again"
        assert len(again.json()["messages"]) == 2


async def test_delete_unknown_is_ok(mode_client: httpx.AsyncClient) -> None:
    response = await mode_client.post("/chat/conversation/delete", json={"userId": "d", "conversationId": "never"})
    assert response.json() == {"ok": True, "userId": "d", "conversationId": "never"}


async def test_healthz(mode_client: httpx.AsyncClient) -> None:
    response = await mode_client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True


async def test_cors_preflight_and_simple_request(mode_client: httpx.AsyncClient) -> None:
    preflight = await mode_client.options(
        "/chat/stream",
        headers={
            "origin": "http://page.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers
    simple = await mode_client.get("/chat/history", params={"userId": "x"}, headers={"origin": "http://page.example"})
    assert simple.headers["access-control-allow-origin"] == "*"


async def test_cors_origins_configurable(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path, cors_allow_origins=["http://good.example"]) as http:
        good = await http.get("/chat/history", params={"userId": "x"}, headers={"origin": "http://good.example"})
        assert good.headers["access-control-allow-origin"] == "http://good.example"
        bad = await http.get("/chat/history", params={"userId": "x"}, headers={"origin": "http://bad.example"})
        assert "access-control-allow-origin" not in bad.headers


async def test_json_replies_keep_their_bytes_and_key_order(client: httpx.AsyncClient) -> None:
    """The replies are Structs now: what a client reads must not change, byte for byte where nothing varies."""
    assert (await client.get("/chat/history", params={"userId": "k"})).content == b'{"userId":"k","messages":[]}'
    assert (await client.post("/chat/clear", json={"userId": "k"})).content == b'{"ok":true,"userId":"k"}'
    created = await client.post("/chat/conversation/create", json={"userId": "k", "conversationId": "c", "title": "T"})
    assert created.content == b'{"ok":true,"userId":"k","conversationId":"c","title":"T"}'
    await reply_to(client, "k", "hello", cid="c")
    listed = (await client.get("/chat/conversations", params={"userId": "k"})).json()
    assert list(listed) == ["userId", "conversations"]
    row = ["conversationId", "title", "createdAt", "updatedAt", "messageCount", "activeStreamId"]
    assert [list(item) for item in listed["conversations"]] == [row]
    one = await client.get("/chat/conversation", params={"userId": "k", "conversationId": "c"})
    assert list(one.json()) == ["userId", "conversationId", "messages"]
    assert [list(message) for message in one.json()["messages"]] == [["role", "content", "meta"]] * 2
    paged = await client.get("/chat/conversation", params={"userId": "k", "conversationId": "c", "limit": 1})
    assert list(paged.json()) == ["userId", "conversationId", "messages", "nextBefore", "hasMore"]
    first = await client.get("/chat/conversation", params={"userId": "k", "conversationId": "c", "before": 1})
    assert first.content.endswith(b',"nextBefore":null,"hasMore":false}')
    stop = await client.post("/chat/stop", json={"userId": "k", "conversationId": "c"})
    assert stop.content == b'{"ok":true,"stopped":false}'
    deleted = await client.post("/chat/conversation/delete", json={"userId": "k", "conversationId": "c"})
    assert deleted.content == b'{"ok":true,"userId":"k","conversationId":"c"}'
    assert (await client.get("/healthz")).content == b'{"ok":true}'
