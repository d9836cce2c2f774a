"""The memory store (`sqlite_path=""`), beyond the contract suite: history in this process only, and the
conversation endpoints answer empty lists, as the reference does without persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from lean_chat.store.base import StoredMessage, default_conversation_id
from lean_chat.store.memory import MemoryStore
from tests.support.apps import in_process, reply_to

pytestmark = pytest.mark.anyio


@pytest.fixture
async def memory_client() -> AsyncIterator[httpx.AsyncClient]:
    """The app with persistence disabled."""
    async with in_process(sqlite_path="") as http:
        yield http


async def test_history_memory_keeps_context_between_turns(memory_client: httpx.AsyncClient) -> None:
    first = await reply_to(memory_client, "m", "one")
    await reply_to(memory_client, "m", "two")
    messages = (await memory_client.get("/chat/history", params={"userId": "m"})).json()["messages"]
    assert [(m["role"], m["content"]) for m in messages][:3] == [
        ("user", "one"),
        ("assistant", first["message"]["content"]),
        ("user", "two"),
    ]


async def test_memory_mode_lists_nothing(memory_client: httpx.AsyncClient) -> None:
    await reply_to(memory_client, "mm", "hello", cid="c")
    assert (await memory_client.get("/chat/conversations", params={"userId": "mm"})).json() == {
        "userId": "mm",
        "conversations": [],
    }


async def test_the_conversation_endpoint_answers_no_messages(memory_client: httpx.AsyncClient) -> None:
    await reply_to(memory_client, "mm", "hello", cid="c")
    params = {"userId": "mm", "conversationId": "c"}
    assert (await memory_client.get("/chat/conversation", params=params)).json() == {
        "userId": "mm",
        "conversationId": "c",
        "messages": [],
    }
    paged = (await memory_client.get("/chat/conversation", params={**params, "limit": "5"})).json()
    assert paged["messages"] == [] and paged["hasMore"] is False and paged["nextBefore"] is None


async def test_a_named_conversation_keeps_its_context_though_no_conversation_endpoint_shows_it() -> None:
    store = MemoryStore()
    first = await store.start_turn("u", "c", [StoredMessage("user", "one")], max_context_chars=0)
    await store.save_reply("u", "c", first.life, StoredMessage("assistant", "reply one"))
    second = await store.start_turn("u", "c", [StoredMessage("user", "two")], max_context_chars=0)
    assert [m.content for m in second.context] == ["one", "reply one", "two"]
    assert second.title == "one"
    assert await store.list_conversations("u", limit=10) == []
    # The store reads it (the AI SDK dialect's history shows it); `/chat/conversation` does not, as the reference.
    assert [m.content for m in (await store.read("u", "c")).messages] == ["one", "reply one", "two"]
    assert (await store.read("stranger", "c")).messages == []
    assert await store.history("u") == []  # the default conversation is another one


async def test_history_is_a_copy_and_each_store_keeps_its_own() -> None:
    store, other = MemoryStore(), MemoryStore()
    for opened in (store, other):
        await opened.open()
        await opened.ping()
    default = default_conversation_id("u")
    start = await store.start_turn("u", default, [StoredMessage("user", "hi")], max_context_chars=0)
    await store.save_reply("u", default, start.life, StoredMessage("assistant", "hello"))
    shown = await store.history("u")
    shown.clear()
    assert [m.content for m in await store.history("u")] == ["hi", "hello"]
    assert await other.history("u") == []
    assert store.persistent is False and store.describe() == "in memory"
    await store.close()
