"""The Store contract, one suite for memory, SQLite and PostgreSQL: merge, titles, lives, ownership, cap, paging."""

from __future__ import annotations

import asyncio
import random

import pytest

from lean_chat.providers.parts import (
    ProviderState,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    decode_parts,
    encode_parts,
    strip_state,
)
from lean_chat.store.base import (
    ConversationForbidden,
    ConversationGone,
    Store,
    StoredMessage,
    default_conversation_id,
)
from lean_chat.store.history import cap_context
from tests.support.stores import PERSISTENT

pytestmark = pytest.mark.anyio

CAP = 400_000


def user(text: str) -> StoredMessage:
    """A user message."""
    return StoredMessage("user", text)


def reply(text: str, partial: bool = False) -> StoredMessage:
    """An assistant message."""
    return StoredMessage("assistant", text, {"partial": True} if partial else None)


def pairs(messages: list[StoredMessage]) -> list[tuple[str, str]]:
    """(role, content) of each message."""
    return [(m.role, m.content) for m in messages]


async def test_a_new_conversation_starts_with_the_incoming_messages(store: Store) -> None:
    cid = default_conversation_id("u")
    start = await store.start_turn("u", cid, [StoredMessage("system", "be brief"), user("  Hello\nthere  ")], CAP)
    assert pairs(start.context) == [("system", "be brief"), ("user", "  Hello\nthere  ")]
    assert start.title == "Hello there"
    # The user's messages are committed when start_turn returns (before any reply byte).
    assert pairs(await store.history("u")) == pairs(start.context)
    await store.save_reply("u", cid, start.life, reply("hi", partial=True))
    assert (await store.history("u"))[-1] == reply("hi", partial=True)


async def test_merge_appends_only_what_is_new(store: Store) -> None:
    cid = default_conversation_id("m")
    first = await store.start_turn("m", cid, [user("one")], CAP)
    await store.save_reply("m", cid, first.life, reply("r1"))
    # The client resends the whole conversation: the stored part is a prefix, only the tail is new.
    again = await store.start_turn("m", cid, [user("one"), reply("r1"), user("two")], CAP)
    assert pairs(again.context) == [("user", "one"), ("assistant", "r1"), ("user", "two")]
    await store.save_reply("m", cid, again.life, reply("r2"))
    # The client sends only its newest message: stored + incoming.
    last = await store.start_turn("m", cid, [user("three")], CAP)
    expected = [("user", "one"), ("assistant", "r1"), ("user", "two"), ("assistant", "r2"), ("user", "three")]
    assert pairs(last.context) == expected
    assert pairs(await store.history("m")) == expected
    # A resend of exactly what is stored adds nothing.
    same = await store.start_turn("m", cid, [user("one"), reply("r1"), user("two"), reply("r2"), user("three")], CAP)
    assert pairs(same.context) == expected and pairs(await store.history("m")) == expected


async def test_the_title_is_the_first_user_message_and_an_explicit_one_is_kept(store: Store) -> None:
    start = await store.start_turn("t", "c1", [StoredMessage("system", "s")], CAP)
    assert start.title == "New chat"
    start = await store.start_turn("t", "c1", [user("x" * 70)], CAP)
    assert start.title == "x" * 60 + "…"
    assert (await store.start_turn("t", "c1", [user("later")], CAP)).title == "x" * 60 + "…"
    assert await store.create("t", "c2", "Mine") == "Mine"
    assert (await store.start_turn("t", "c2", [user("not the title")], CAP)).title == "Mine"
    assert await store.create("t", "c2", None) == "Mine"


async def test_another_users_conversation_is_forbidden_and_untouched(store: Store) -> None:
    start = await store.start_turn("owner", "shared", [user("mine")], CAP)
    with pytest.raises(ConversationForbidden):
        await store.start_turn("intruder", "shared", [user("theirs")], CAP)
    with pytest.raises(ConversationForbidden):
        await store.create("intruder", "shared", "taken")
    with pytest.raises(ConversationForbidden):
        await store.start_turn("intruder", default_conversation_id("owner"), [user("x")], CAP)
    with pytest.raises(ConversationGone):
        await store.save_reply("intruder", "shared", start.life, reply("theirs"))
    await store.delete("intruder", "shared")
    await store.clear("intruder")
    again = await store.start_turn("owner", "shared", [user("still mine")], CAP)
    assert pairs(again.context) == [("user", "mine"), ("user", "still mine")]
    assert again.life == start.life


@pytest.mark.parametrize("forget", ["delete", "clear"])
async def test_deleted_conversation_comes_back(store: Store, forget: str) -> None:
    cid = default_conversation_id("d")
    start = await store.start_turn("d", cid, [user("secret")], CAP)
    if forget == "delete":
        await store.delete("d", cid)
    else:
        await store.clear("d")
    with pytest.raises(ConversationGone):
        await store.save_reply("d", cid, start.life, reply("late reply"))
    assert await store.history("d") == []
    assert await store.list_conversations("d", 10) == []
    # The same user starting the id again gets a new life; the old turn's reply still cannot land in it.
    fresh = await store.start_turn("d", cid, [user("new start")], CAP)
    assert fresh.life != start.life and fresh.title == "new start"
    with pytest.raises(ConversationGone):
        await store.save_reply("d", cid, start.life, reply("late reply"))
    assert pairs(await store.history("d")) == [("user", "new start")]


async def test_another_user_takes_over_a_deleted_id(store: Store) -> None:
    start = await store.start_turn("a", "x", [user("a's question")], CAP)
    await store.delete("a", "x")
    assert await store.create("b", "x", "B's") == "B's"
    b_start = await store.start_turn("b", "x", [user("b's question")], CAP)
    with pytest.raises(ConversationGone):
        await store.save_reply("a", "x", start.life, reply("a's reply"))
    with pytest.raises(ConversationForbidden):
        await store.start_turn("a", "x", [user("again")], CAP)
    assert pairs(b_start.context) == [("user", "b's question")]
    if store.persistent:
        page = await store.read("b", "x")
        assert pairs(page.messages) == [("user", "b's question")]
        assert [c.title for c in await store.list_conversations("b", 10)] == ["B's"]
        assert (await store.read("a", "x")).messages == []


async def test_the_context_is_capped_oldest_first_keeping_system_messages(store: Store) -> None:
    cid = default_conversation_id("cap")
    start = await store.start_turn("cap", cid, [StoredMessage("system", "S" * 10), user("a" * 40)], 100)
    await store.save_reply("cap", cid, start.life, reply("b" * 40))
    start = await store.start_turn("cap", cid, [user("c" * 40)], 100)
    # 10 (system) + 40 + 40 fit in 100; the oldest user message does not.
    assert pairs(start.context) == [("system", "S" * 10), ("assistant", "b" * 40), ("user", "c" * 40)]
    # The newest message is sent even when it alone is over the cap.
    start = await store.start_turn("cap", cid, [user("d" * 500)], 100)
    assert pairs(start.context) == [("system", "S" * 10), ("user", "d" * 500)]
    # Everything is still stored.
    assert len(await store.history("cap")) == 5


async def test_whole_conversation_loaded_per_turn(store: Store) -> None:
    """A long conversation's turn gets exactly the capped context, turn after turn (the cache kept right)."""
    rng = random.Random(7)
    cid = default_conversation_id("long")
    cap = 5_000
    everything: list[StoredMessage] = []
    for turn in range(80):
        incoming = [user(f"q{turn} " + "x" * (6_000 if turn % 30 == 29 else rng.randrange(0, 400)))]
        if turn % 25 == 0:
            incoming.insert(0, StoredMessage("system", f"rule {turn}"))
        start = await store.start_turn("long", cid, incoming, cap)
        everything += incoming
        assert start.context == cap_context(everything, cap), turn
        assert sum(len(m.content) for m in start.context) <= cap or len(start.context[-1].content) > cap
        answer = reply(f"a{turn} " + "y" * rng.randrange(0, 400), partial=turn % 7 == 0)
        await store.save_reply("long", cid, start.life, answer)
        everything.append(answer)
    assert await store.history("long") == everything


async def test_concurrent_turns_into_one_conversation_lose_and_duplicate_nothing(store: Store) -> None:
    cid = default_conversation_id("busy")

    async def one(index: int) -> None:
        start = await store.start_turn("busy", cid, [user(f"q{index}")], CAP)
        await store.save_reply("busy", cid, start.life, reply(f"r{index}"))

    await asyncio.gather(*(one(i) for i in range(30)))
    stored = pairs(await store.history("busy"))
    assert sorted(stored) == sorted(
        [("user", f"q{i}") for i in range(30)] + [("assistant", f"r{i}") for i in range(30)]
    )


async def test_two_users_creating_one_id_at_once_leave_one_owner(store: Store) -> None:
    async def claim(who: str) -> str:
        try:
            await store.start_turn(who, "contested", [user(f"by {who}")], CAP)
        except ConversationForbidden:
            return ""
        return who

    winners = [w for w in await asyncio.gather(*(claim(f"user{i}") for i in range(8))) if w]
    assert len(winners) == 1
    if store.persistent:
        page = await store.read(winners[0], "contested")
        assert pairs(page.messages) == [("user", f"by {winners[0]}")]


@pytest.mark.parametrize("kind", PERSISTENT)
async def test_conversation_pages(store: Store) -> None:
    cid = "paged"
    start = await store.start_turn("p", cid, [user(f"m{i}") for i in range(10)], CAP)
    assert start.context[0].content == "m0"
    whole = await store.read("p", cid)
    assert whole.start == 0 and [m.content for m in whole.messages] == [f"m{i}" for i in range(10)]
    newest = await store.read("p", cid, limit=4)
    assert newest.start == 6 and [m.content for m in newest.messages] == ["m6", "m7", "m8", "m9"]
    older = await store.read("p", cid, limit=4, before=newest.start)
    assert older.start == 2 and [m.content for m in older.messages] == ["m2", "m3", "m4", "m5"]
    oldest = await store.read("p", cid, limit=4, before=older.start)
    assert oldest.start == 0 and [m.content for m in oldest.messages] == ["m0", "m1"]
    assert (await store.read("p", cid, before=3)).messages == whole.messages[:3]
    assert (await store.read("p", cid, limit=5, before=999)).start == 5
    assert (await store.read("p", cid, limit=3, before=0)).messages == []
    assert (await store.read("stranger", cid, limit=3)).messages == []


@pytest.mark.parametrize("kind", PERSISTENT)
async def test_conversations_are_listed_newest_first_with_counts(store: Store) -> None:
    for name in ("first", "second"):
        start = await store.start_turn("l", name, [user(name)], CAP)
        await store.save_reply("l", name, start.life, reply("ok"))
        await asyncio.sleep(0.01)
    listed = await store.list_conversations("l", 10)
    assert [(c.conversationId, c.title, c.messageCount) for c in listed] == [
        ("second", "second", 2),
        ("first", "first", 2),
    ]
    assert len(await store.list_conversations("l", 1)) == 1


async def test_truncate_keeps_the_first_messages_in_a_new_life(store: Store) -> None:
    start = await store.start_turn("t", "cut", [user("q1")], CAP)
    await store.save_reply("t", "cut", start.life, reply("r1"))
    second = await store.start_turn("t", "cut", [user("q2")], CAP)
    await store.truncate("stranger", "cut", 1)  # another user's: nothing happens
    await store.truncate("t", "cut", 5)  # nothing past the end: nothing happens, the life goes on
    await store.save_reply("t", "cut", second.life, reply("r2"))
    await store.truncate("t", "cut", 2)
    with pytest.raises(ConversationGone):  # a reply streaming into the old life is not saved
        await store.save_reply("t", "cut", second.life, reply("late"))
    again = await store.start_turn("t", "cut", [user("q1"), reply("r1"), user("q2'")], CAP)
    assert again.life != second.life
    assert pairs(again.context) == [("user", "q1"), ("assistant", "r1"), ("user", "q2'")]
    await store.save_reply("t", "cut", again.life, reply("r2'"))
    assert pairs((await store.read("t", "cut")).messages) == [
        ("user", "q1"),
        ("assistant", "r1"),
        ("user", "q2'"),
        ("assistant", "r2'"),
    ]
    if store.persistent:
        assert [c.messageCount for c in await store.list_conversations("t", 10)] == [4]


async def test_a_tool_turns_parts_come_back_in_order_with_their_opaque_state(store: Store) -> None:
    # meta.parts as the engine keeps them (encode_parts): every kind, unicode, the provider's state untouched.
    parts = encode_parts(
        [
            ReasoningPart("pensée ✓", ProviderState("anthropic", "claude-x", {"signature": "c2ln\u2028=="})),
            ReasoningPart("", ProviderState("anthropic", "claude-x", {"redacted": "b3BhcXVl"})),
            ToolCallPart("toolu_1", "get_weather", {"city": "Zürich", "days": [1, 2]}),
            ToolCallPart("call_2", "add", '{"a": 1,', ProviderState("gemini", "gemini-3", {"thoughtSignature": "s"})),
            ToolResultPart("toolu_1", "get_weather", output={"celsius": 21.5, "ok": True, "none": None}),
            ToolResultPart("call_2", "add", error={"code": "invalid_arguments", "message": "bad"}, isError=True),
            TextPart("Il fait 21,5 °C."),
        ]
    )
    cid = default_conversation_id("parts")
    start = await store.start_turn("parts", cid, [user("weather?")], CAP)
    await store.save_reply("parts", cid, start.life, StoredMessage("assistant", "Il fait 21,5 °C.", {"parts": parts}))
    kept = (await store.history("parts"))[-1]
    assert kept.meta == {"parts": parts}
    assert decode_parts(kept.meta["parts"]) is not None
    # The next turn's context carries them (the client sends only its new message).
    following = await store.start_turn("parts", cid, [user("and tomorrow?")], CAP)
    assert following.context[-2].meta == {"parts": parts}


async def test_a_resent_conversation_gets_the_stored_parts_with_their_state(store: Store) -> None:
    # ai-chat-kit resends every earlier message on each turn, without meta.parts (the client never has the state).
    parts = encode_parts(
        [
            ReasoningPart("pensée", ProviderState("anthropic", "claude-x", {"signature": "c2ln=="})),
            ReasoningPart("", ProviderState("anthropic", "claude-x", {"redacted": "b3BhcXVl"})),
            ToolCallPart(
                "call_0", "get_weather", {"city": "Oslo"}, ProviderState("gemini", "g-3", {"thoughtSignature": "t"})
            ),
            ToolResultPart("call_0", "get_weather", output={"celsius": 21}),
            TextPart("Sunny."),
        ]
    )
    cid = default_conversation_id("resend")
    tagged = StoredMessage("user", "weather?", {"label": "parts"})  # "parts" in its meta's text, not a meta.parts
    start = await store.start_turn("resend", cid, [tagged], CAP)
    answer = StoredMessage("assistant", "Sunny.", {"parts": parts})
    await store.save_reply("resend", cid, start.life, answer)
    second = await store.start_turn("resend", cid, [user("weather?"), reply("Sunny."), user("tomorrow?")], CAP)
    # The stored copy of the reply with parts (meta whole); the client's copies of the others.
    assert second.context == [user("weather?"), answer, user("tomorrow?")]
    await store.save_reply("resend", cid, second.life, reply("Rain."))
    # A resend with the parts as /chat/history shows them (no state), and one more message: the stored copy again.
    public = StoredMessage("assistant", "Sunny.", strip_state(answer.meta))
    resent = [user("weather?"), public, user("tomorrow?"), reply("Rain."), user("after?")]
    third = await store.start_turn("resend", cid, resent, CAP)
    assert third.context == [user("weather?"), answer, user("tomorrow?"), reply("Rain."), user("after?")]
    # The window the store keeps for the conversation has them too: a client sending only its new message.
    fourth = await store.start_turn("resend", cid, [user("thanks")], CAP)
    assert fourth.context[1] == answer
    # Nothing stored changed: the history is the first copies, the reply's state kept.
    assert pairs(await store.history("resend")) == pairs(fourth.context)
    assert (await store.history("resend"))[1] == answer
