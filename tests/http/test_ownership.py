"""Ownership: no endpoint lets user B read, change or delete user A's conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.support.apps import in_process, stream_body, turn
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.upstreams import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio

FORBIDDEN = {
    "type": "error",
    "error": {"message": "This conversation belongs to another user.", "code": "conversation_forbidden"},
}


@pytest.fixture
def upstream(live_server: Callable[..., LiveServer]) -> tuple[FakeOpenAI, str]:
    """A fake OpenAI on loopback, to see whether a provider was called."""
    fake = FakeOpenAI(Reply(tokens=["Hi", " A"]))
    server = live_server(fake)
    return fake, server.url


@pytest.fixture(params=["sqlite", "memory"])
async def http(
    request: pytest.FixtureRequest, sqlite_path: str, upstream: tuple[FakeOpenAI, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in each storage mode, with OpenAI pointing at the fake."""
    fake, url = upstream
    path = sqlite_path if request.param == "sqlite" else ""
    async with in_process(sqlite_path=path, **fake.options(url)) as client:
        yield client


async def a_owns(http: httpx.AsyncClient, cid: str = "shared") -> str:
    """User A holds a conversation with one turn; return the reply."""
    done = check_grammar(parse_frames((await turn(http, stream_body("A", "private", conversation_id=cid))).content))
    assert done.event == "done" and done.data["conversationId"] == cid
    return str(done.data["message"]["content"])


async def a_sees(http: httpx.AsyncClient, cid: str = "shared") -> list[Any]:
    """What A's own view of the conversation holds (history in memory mode, where it cannot be listed)."""
    response = await http.get("/chat/conversation", params={"userId": "A", "conversationId": cid})
    return list(response.json()["messages"])


async def a_context(http: httpx.AsyncClient, fake: FakeOpenAI, cid: str = "shared") -> list[tuple[str, str]]:
    """The context a provider sees on A's next turn (works in memory mode too, where nothing is listed)."""
    done = check_grammar(
        parse_frames((await turn(http, stream_body("A", "check", conversation_id=cid, model="gpt-4.1"))).content)
    )
    assert done.event == "done"
    return [(m["role"], m["content"]) for m in fake.received[-1].body["messages"]]


async def test_b_cannot_read(http: httpx.AsyncClient) -> None:
    await a_owns(http)
    shown = await http.get("/chat/conversation", params={"userId": "B", "conversationId": "shared"})
    assert shown.status_code == 200
    assert shown.json() == {"userId": "B", "conversationId": "shared", "messages": []}
    listed = await http.get("/chat/conversations", params={"userId": "B"})
    assert listed.json() == {"userId": "B", "conversations": []}
    assert (await http.get("/chat/history", params={"userId": "B"})).json()["messages"] == []


async def test_b_cannot_stream_into_it(http: httpx.AsyncClient, upstream: tuple[FakeOpenAI, str]) -> None:
    fake, _ = upstream
    reply = await a_owns(http)
    before = await a_sees(http)
    attempts = fake.attempts
    for model in (None, "gpt-4.1", "mock-x"):
        body = stream_body("B", "let me in", conversation_id="shared", model=model)
        response = await turn(http, body)
        frames = parse_frames(response.content)
        assert [f.event for f in frames] == ["error"]
        assert frames[0].data == FORBIDDEN
        assert "event: token" not in response.text
    # No provider was called and nothing was written.
    assert fake.attempts == attempts
    assert await a_sees(http) == before
    assert await a_context(http, fake) == [("user", "private"), ("assistant", reply), ("user", "check")]
    assert (await http.get("/chat/conversations", params={"userId": "B"})).json()["conversations"] == []


async def test_b_cannot_take_a_default_conversation(http: httpx.AsyncClient) -> None:
    response = await turn(http, stream_body("B", "hi", conversation_id="default:A"))
    assert parse_frames(response.content)[0].data == FORBIDDEN
    created = await http.post("/chat/conversation/create", json={"userId": "B", "conversationId": "default:A"})
    assert created.status_code == 409
    assert (await http.get("/chat/history", params={"userId": "A"})).json()["messages"] == []


async def test_b_cannot_create_on_a_conversation(http: httpx.AsyncClient, upstream: tuple[FakeOpenAI, str]) -> None:
    reply = await a_owns(http)
    before = await a_sees(http)
    response = await http.post(
        "/chat/conversation/create", json={"userId": "B", "conversationId": "shared", "title": "mine"}
    )
    assert response.status_code == 409
    assert isinstance(response.json()["detail"], str)
    assert await a_sees(http) == before
    assert await a_context(http, upstream[0]) == [("user", "private"), ("assistant", reply), ("user", "check")]


async def test_b_cannot_delete_or_clear(http: httpx.AsyncClient, upstream: tuple[FakeOpenAI, str]) -> None:
    reply = await a_owns(http)
    await a_owns(http, "default:A")
    before = await a_sees(http)
    deleted = await http.post("/chat/conversation/delete", json={"userId": "B", "conversationId": "shared"})
    assert deleted.status_code == 200
    assert deleted.json() == {"ok": True, "userId": "B", "conversationId": "shared"}
    cleared = await http.post("/chat/clear", json={"userId": "B"})
    assert cleared.json() == {"ok": True, "userId": "B"}
    assert await a_sees(http) == before
    assert len((await http.get("/chat/history", params={"userId": "A"})).json()["messages"]) == 2
    assert await a_context(http, upstream[0]) == [("user", "private"), ("assistant", reply), ("user", "check")]
    response = await turn(http, stream_body("B", "still no", conversation_id="shared"))
    assert parse_frames(response.content)[0].data == FORBIDDEN


async def test_a_keeps_using_it(http: httpx.AsyncClient, upstream: tuple[FakeOpenAI, str]) -> None:
    fake, _ = upstream
    await a_owns(http)
    response = await turn(http, stream_body("A", "again", conversation_id="shared", model="gpt-4.1"))
    done = check_grammar(parse_frames(response.content))
    assert done.event == "done" and done.data["provider"] == "openai:gpt-4.1"
    assert fake.attempts >= 1
