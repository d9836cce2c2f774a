"""Limits (`limits.py` and the settings it reads): body size, messages per request, characters per message,
list `limit`, streams per user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from lean_chat import Settings
from lean_chat.http.limits import RETRY_AFTER_SECONDS, check_chat_request
from lean_chat.http.schema import ChatMessage, ChatRequest
from lean_chat.hub import MemoryHub, StreamInfo
from lean_chat.refusals import TooManyStreams, ValidationFailed
from tests.support.apps import in_process, stream_body
from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio


async def test_limits_have_sane_defaults_and_read_the_environment() -> None:
    defaults = Settings()
    assert defaults.max_body_bytes == 1024 * 1024
    assert defaults.max_messages_per_request == 1000
    assert defaults.max_message_chars == 200_000
    assert defaults.max_streams_per_user == 20
    env = {
        "LEAN_CHAT_MAX_MESSAGES_PER_REQUEST": "5",
        "LEAN_CHAT_MAX_MESSAGE_CHARS": "10",
        "LEAN_CHAT_MAX_STREAMS_PER_USER": "2",
        "LEAN_CHAT_MAX_BODY_BYTES": "100",
        "LEAN_CHAT_MAX_CONVERSATIONS_LIMIT": "3",
    }
    settings = Settings.from_env(env)
    assert (
        settings.max_messages_per_request,
        settings.max_message_chars,
        settings.max_streams_per_user,
        settings.max_body_bytes,
        settings.max_conversations_limit,
    ) == (5, 10, 2, 100, 3)


async def test_too_many_messages_is_422_naming_the_limit() -> None:
    async with in_process(sqlite_path="", max_messages_per_request=3) as http:
        ok = await http.post("/chat/stream", json=stream_body("u", "a", "b", "c"))
        assert check_grammar(parse_frames(ok.content)).event == "done"
        refused = await http.post("/chat/stream", json=stream_body("u", "a", "b", "c", "d"))
        assert refused.status_code == 422
        [error] = refused.json()["detail"]
        assert error["type"] == "too_long"
        assert error["loc"] == ["body", "messages"]
        assert error["ctx"]["max_length"] == 3
        assert "at most 3 items" in error["msg"]


async def test_too_long_message_is_422_naming_the_limit() -> None:
    async with in_process(sqlite_path="", max_message_chars=50) as http:
        ok = await http.post("/chat/stream", json=stream_body("u", "x" * 50))
        assert ok.status_code == 200
        refused = await http.post("/chat/stream", json=stream_body("u", "short", "y" * 51))
        assert refused.status_code == 422
        [error] = refused.json()["detail"]
        assert error == {
            "type": "string_too_long",
            "loc": ["body", "messages", 1, "content"],
            "msg": "String should have at most 50 characters",
            "input": None,
            "ctx": {"max_length": 50},
        }
        history = (await http.get("/chat/history", params={"userId": "u"})).json()["messages"]
        assert [m["content"] for m in history if m["role"] == "user"] == ["x" * 50]  # the refused turn saved nothing


async def test_body_over_the_limit_is_413_on_every_post_endpoint() -> None:
    async with in_process(sqlite_path="", max_body_bytes=200) as http:
        for path in ("/chat/stream", "/chat/clear", "/chat/conversation/create", "/chat/conversation/delete"):
            big = {"userId": "u", "conversationId": "c", "messages": [{"role": "user", "content": "z" * 300}]}
            refused = await http.post(path, json=big)
            assert refused.status_code == 413, path
            assert refused.json() == {"detail": "Request body is too large (limit 200 bytes)."}

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(10):
                    yield b" " * 50  # no content-length: counted as it arrives

            streamed = await http.post(path, content=chunks(), headers={"content-type": "application/json"})
            assert streamed.status_code == 413, path


async def test_conversations_limit_is_clamped(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path, max_conversations_limit=3) as http:
        for n in range(5):
            await http.post("/chat/conversation/create", json={"userId": "u", "conversationId": f"c{n}"})
        for raw, expected in (("1000", 3), ("2", 2), ("0", 1), ("-5", 1), ("99999999999999999999999", 3)):
            listed = await http.get("/chat/conversations", params={"userId": "u", "limit": raw})
            assert listed.status_code == 200, raw
            assert len(listed.json()["conversations"]) == expected, raw
        bad = await http.get("/chat/conversations", params={"userId": "u", "limit": "lots"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_concurrent_streams_per_user_past_the_limit_get_429(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path, max_streams_per_user=2) as http:
        slow: dict[str, Any] = {"tokenDelayMs": 8, "targetChars": 250}

        async def open_stream(user: str, n: int) -> httpx.Response:
            body = stream_body(user, f"hi {n}", conversation_id=f"{user}-{n}", **slow)
            return await http.post("/chat/stream", json=body)

        with anyio.fail_after(30):
            running = [asyncio.create_task(open_stream("alice", n)) for n in range(2)]
            await asyncio.sleep(0.3)  # both are streaming now
            refused = await open_stream("alice", 3)
            other_user = await open_stream("bob", 1)
            finished = await asyncio.gather(*running)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "limit 2" in refused.json()["detail"]
        assert other_user.status_code == 200
        for response in finished:
            assert check_grammar(parse_frames(response.content)).event == "done"
        # The slots are given back: alice may stream again, and the refused turn saved nothing.
        again = await open_stream("alice", 4)
        assert check_grammar(parse_frames(again.content)).event == "done"
        refused_conv = await http.get("/chat/conversation", params={"userId": "alice", "conversationId": "alice-3"})
        assert refused_conv.json()["messages"] == []


async def test_slots_are_given_back_after_failures(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path, max_streams_per_user=1) as http:
        for _ in range(3):
            forbidden = stream_body("bob", "x", conversation_id="default:alice")
            assert parse_frames((await http.post("/chat/stream", json=forbidden)).content)[-1].event == "error"
            failing = stream_body("bob", "x", model="gpt-4.1")  # no key configured: error frame
            assert parse_frames((await http.post("/chat/stream", json=failing)).content)[-1].event == "error"
        ok = await http.post("/chat/stream", json=stream_body("bob", "x"))
        assert check_grammar(parse_frames(ok.content)).event == "done"


def chat(*contents: str) -> ChatRequest:
    """A chat request of user messages."""
    return ChatRequest(userId="u", messages=[ChatMessage(role="user", content=c) for c in contents])


def stream(user_id: str, number: int) -> StreamInfo:
    """A stream of the user (the hub counts each user's running streams: lean_chat/hub)."""
    return StreamInfo(f"{number:032x}", user_id, "c", "", False)


@pytest.mark.anyio
async def test_a_limit_of_zero_is_no_limit() -> None:
    check_chat_request(chat(*["x" * 10_000] * 50), max_messages=0, max_chars=0)
    hub = MemoryHub()
    streams = [stream("u", n) for n in range(3)]
    for info in streams:
        await hub.claim(info, per_user=0)
    assert hub.per_user == {"u": 3}
    for info in streams:
        await hub.release(info)
    assert hub.per_user == {}


def test_too_many_and_too_long_messages_are_reported_together_in_order() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_chat_request(chat("ok", "long one", "ok", "longer one"), max_messages=3, max_chars=5)
    assert refused.value.status_code == 422
    assert [e["loc"] for e in refused.value.detail] == [
        ["body", "messages"],
        ["body", "messages", 1, "content"],
        ["body", "messages", 3, "content"],
    ]


@pytest.mark.anyio
async def test_slots_count_per_user_and_are_given_back_when_the_stream_ends() -> None:
    hub = MemoryHub()
    alice = [stream("alice", 1), stream("alice", 2)]
    for info in alice:
        await hub.claim(info, per_user=2)
    with pytest.raises(TooManyStreams) as refused:
        await hub.claim(stream("alice", 3), per_user=2)
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": str(RETRY_AFTER_SECONDS)}
    bob = stream("bob", 4)
    await hub.claim(bob, per_user=2)
    assert hub.per_user == {"alice": 2, "bob": 1}
    for info in [*alice, bob]:
        await hub.release(info)
        await hub.release(info)  # twice: given back once
    assert hub.per_user == {}
