"""The store's rules seen through HTTP on every store: deletes are final mid-stream, capped context, paging."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from tests.support.apps import in_process, stream_body, turn
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.postgres import run_sql
from tests.support.stores import PERSISTENT
from tests.support.tools import get_weather, tool_body
from tests.support.upstreams import FakeOpenAI, Reply

# A mock reply of about 60 tokens at 20 ms each: a second or so to delete the conversation under it.
SLOW: dict[str, Any] = {"tokenDelayMs": 20, "targetChars": 300}


def stream_while(server: LiveServer, body: dict[str, Any], during: Callable[[], None]) -> list[Any]:
    """Stream `body`; once its first token arrived, run `during`; return all frames."""
    with (
        httpx.Client(base_url=server.url, timeout=20) as http,
        http.stream("POST", "/chat/stream", json=body) as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_bytes()
        first = next(chunks)
        assert first.startswith(b"event: token\n")
        during()
        rest = b"".join(chunks)
    return parse_frames(first + rest)


@pytest.mark.parametrize("forget", ["delete", "clear"])
def test_deleted_conversation_comes_back(
    live_server: Callable[..., LiveServer], database_url: str, forget: str
) -> None:
    server = live_server(create_app(database_url=database_url))
    body = stream_body("gone", "a secret question", **SLOW)  # the user's default conversation
    http = httpx.Client(base_url=server.url, timeout=10)

    def forget_it() -> None:
        if forget == "delete":
            answer = http.post("/chat/conversation/delete", json={"userId": "gone", "conversationId": "default:gone"})
        else:
            answer = http.post("/chat/clear", json={"userId": "gone"})
        assert answer.status_code == 200
        assert http.get("/chat/history", params={"userId": "gone"}).json()["messages"] == []

    last = check_grammar(stream_while(server, body, forget_it))
    assert last.event == "error"
    assert last.data["error"]["code"] == "conversation_deleted"
    assert "deleted" in last.data["error"]["message"]
    # The stream has ended: the conversation did not come back, nor did any of its messages.
    assert http.get("/chat/history", params={"userId": "gone"}).json()["messages"] == []
    assert http.get("/chat/conversations", params={"userId": "gone"}).json()["conversations"] == []
    shown = http.get("/chat/conversation", params={"userId": "gone", "conversationId": "default:gone"}).json()
    assert shown["messages"] == []
    http.close()


@pytest.mark.parametrize("kind", PERSISTENT)
def test_another_user_takes_over_a_deleted_id(
    live_server: Callable[..., LiveServer], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = live_server(create_app(database_url=database_url))
    cid = "x\nERROR:     forged log line"
    http = httpx.Client(base_url=server.url, timeout=10)

    def take_over() -> None:
        assert http.post("/chat/conversation/delete", json={"userId": "a", "conversationId": cid}).status_code == 200
        created = http.post("/chat/conversation/create", json={"userId": "b", "conversationId": cid, "title": "B's"})
        assert created.status_code == 200
        frames = parse_frames(
            http.post("/chat/stream", json=stream_body("b", "b's question", conversation_id=cid)).content
        )
        assert check_grammar(frames).event == "done"

    with caplog.at_level(logging.INFO):
        frames = stream_while(server, stream_body("a", "a's question", conversation_id=cid, **SLOW), take_over)
    last = check_grammar(frames)
    assert last.event == "error" and last.data["error"]["code"] == "conversation_deleted"
    # Nothing of B's touched, nothing of A's in it.
    b_view = http.get("/chat/conversation", params={"userId": "b", "conversationId": cid}).json()["messages"]
    assert [(m["role"], m["content"][:12]) for m in b_view] == [("user", "b's question"), ("assistant", "Mock reply (")]
    listed = http.get("/chat/conversations", params={"userId": "b"}).json()["conversations"]
    assert [(c["title"], c["messageCount"]) for c in listed] == [("B's", 2)]
    assert http.get("/chat/conversations", params={"userId": "a"}).json()["conversations"] == []
    http.close()
    # No traceback, and the client's id never raw in a log line.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not [r for r in caplog.records if "forged log line" in r.getMessage() and "\n" in r.getMessage()]


def test_whole_conversation_loaded_per_turn(live_server: Callable[..., LiveServer], database_url: str) -> None:
    """What a turn sends upstream is capped (system message kept, oldest dropped), however long the history."""
    fake = FakeOpenAI(Reply(tokens=["ok"]))
    fake.url = live_server(fake).url
    server = live_server(create_app(database_url=database_url, max_context_chars=50_000, **fake.options()))
    system = {"role": "system", "content": "You are terse."}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for turn in range(12):  # about 360,000 characters of history
            messages = [{"role": "user", "content": f"turn {turn} " + "z" * 30_000}]
            body = {
                "userId": "big",
                "messages": ([system] if turn == 0 else []) + messages,
                "params": {"model": "mock", "mock": {"tokenDelayMs": 0}},
            }
            assert check_grammar(parse_frames(http.post("/chat/stream", json=body).content)).event == "done"
        last = {"userId": "big", "messages": [{"role": "user", "content": "and now?"}], "params": {"model": "gpt-4.1"}}
        assert check_grammar(parse_frames(http.post("/chat/stream", json=last).content)).event == "done"
        stored = http.get("/chat/history", params={"userId": "big"}).json()["messages"]
    sent = fake.received[-1].body["messages"]
    assert sum(len(m["content"]) for m in sent) <= 50_000
    assert sent[0] == system
    assert sent[-1] == {"role": "user", "content": "and now?"}
    assert sent[1]["content"].startswith("Mock reply")  # a contiguous tail after the system message
    assert len(sent) < len(stored) == 1 + 12 * 2 + 2


@pytest.mark.parametrize("kind", PERSISTENT)
def test_conversation_pages(live_server: Callable[..., LiveServer], database_url: str) -> None:
    server = live_server(create_app(database_url=database_url))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for i in range(3):
            http.post("/chat/stream", json=stream_body("pager", f"q{i}", conversation_id="p"))
        query = {"userId": "pager", "conversationId": "p"}
        whole = http.get("/chat/conversation", params=query).json()
        assert list(whole) == ["userId", "conversationId", "messages"] and len(whole["messages"]) == 6
        page = http.get("/chat/conversation", params={**query, "limit": 4}).json()
        assert page["messages"] == whole["messages"][2:] and page["nextBefore"] == 2 and page["hasMore"] is True
        older = http.get("/chat/conversation", params={**query, "limit": 4, "before": 2}).json()
        assert older["messages"] == whole["messages"][:2] and older["nextBefore"] is None and older["hasMore"] is False
        bad = http.get("/chat/conversation", params={**query, "limit": "many"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "limit"]


NUL = "a\x00b"
LONG = "L" * 10_000  # a random 10,000-character id once gave PostgreSQL's "index row requires 10016 bytes"
# Requests with a NUL or an oversized id, and the (type, loc) of the 422 every store must give.
REFUSED: list[tuple[str, str, dict[str, Any], list[tuple[str, list[Any]]]]] = [
    ("POST", "/chat/stream", stream_body(NUL, "hi"), [("value_error", ["body", "userId"])]),
    ("POST", "/chat/stream", stream_body("u", NUL), [("value_error", ["body", "messages", 0, "content"])]),
    (
        "POST",
        "/chat/stream",
        stream_body("u", "hi", conversation_id=NUL),
        [("value_error", ["body", "params", "conversationId"])],
    ),
    ("POST", "/chat/stream", stream_body(LONG, "hi"), [("string_too_long", ["body", "userId"])]),
    (
        "POST",
        "/chat/stream",
        stream_body("u", "hi", conversation_id=LONG),
        [("string_too_long", ["body", "params", "conversationId"])],
    ),
    ("GET", "/chat/history", {"userId": NUL}, [("value_error", ["query", "userId"])]),
    ("GET", "/chat/history", {"userId": LONG}, [("string_too_long", ["query", "userId"])]),
    ("GET", "/chat/conversations", {"userId": NUL}, [("value_error", ["query", "userId"])]),
    ("GET", "/chat/conversations", {"userId": LONG}, [("string_too_long", ["query", "userId"])]),
    (
        "GET",
        "/chat/conversation",
        {"userId": "u", "conversationId": NUL},
        [("value_error", ["query", "conversationId"])],
    ),
    (
        "GET",
        "/chat/conversation",
        {"userId": "u", "conversationId": LONG},
        [("string_too_long", ["query", "conversationId"])],
    ),
    (
        "POST",
        "/chat/conversation/create",
        {"userId": "u", "conversationId": NUL},
        [("value_error", ["body", "conversationId"])],
    ),
    ("POST", "/chat/conversation/create", {"userId": "u", "title": NUL}, [("value_error", ["body", "title"])]),
    (
        "POST",
        "/chat/conversation/create",
        {"userId": "u", "conversationId": LONG},
        [("string_too_long", ["body", "conversationId"])],
    ),
    ("POST", "/chat/conversation/create", {"userId": LONG}, [("string_too_long", ["body", "userId"])]),
    (
        "POST",
        "/chat/conversation/delete",
        {"userId": "u", "conversationId": LONG},
        [("string_too_long", ["body", "conversationId"])],
    ),
    ("POST", "/chat/clear", {"userId": NUL}, [("value_error", ["body", "userId"])]),
    ("POST", "/chat/clear", {"userId": LONG}, [("string_too_long", ["body", "userId"])]),
]


def test_nul_and_oversized_ids_are_the_same_422_on_every_store(
    live_server: Callable[..., LiveServer], database_url: str
) -> None:
    server = live_server(create_app(database_url=database_url))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for method, path, payload, expected in REFUSED:
            if method == "GET":
                answer = http.get(path, params=payload)
            else:
                answer = http.post(path, json=payload)
            assert answer.status_code == 422, (path, answer.status_code, answer.text[:200])
            assert [(d["type"], d["loc"]) for d in answer.json()["detail"]] == expected, path
        # Nothing refused was kept, and the longest id allowed works end to end.
        assert http.get("/chat/conversations", params={"userId": "u"}).json()["conversations"] == []
        longest = "i" * 256
        frames = parse_frames(http.post("/chat/stream", json=stream_body(longest, "hi")).content)
        assert check_grammar(frames).event == "done"
        shown = http.get("/chat/history", params={"userId": longest}).json()["messages"]
        assert [m["role"] for m in shown] == ["user", "assistant"]
        created = http.post("/chat/conversation/create", json={"userId": longest, "conversationId": longest})
        assert created.status_code == 200 and created.json()["conversationId"] == longest


def refuse_complete_replies(database_url: str) -> None:
    """A trigger in the store's own database that refuses every complete assistant reply (a partial one passes)."""
    if database_url.startswith("sqlite:"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            db.execute(
                "CREATE TRIGGER refuse_complete BEFORE INSERT ON lc_messages"
                " WHEN NEW.role = 'assistant' AND NEW.meta IS NULL BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        return
    run_sql(
        database_url,
        "CREATE FUNCTION refuse_complete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.role = 'assistant' AND NEW.meta IS NULL THEN RAISE EXCEPTION 'refused'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER refuse_complete BEFORE INSERT ON lc_messages FOR EACH ROW EXECUTE FUNCTION refuse_complete()",
    )


@pytest.mark.parametrize("kind", PERSISTENT)
def test_a_reply_whose_save_failed_is_kept_partial(
    live_server: Callable[..., LiveServer], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = live_server(create_app(database_url=database_url))
    refuse_complete_replies(database_url)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http, caplog.at_level(logging.ERROR):
            frames = parse_frames(http.post("/chat/stream", json=stream_body("keep", "a question")).content)
            stored = http.get("/chat/history", params={"userId": "keep"}).json()["messages"]
    finally:
        if not database_url.startswith("sqlite:"):
            run_sql(database_url, "DROP FUNCTION refuse_complete() CASCADE")
    last = check_grammar(frames)
    assert last.event == "error" and last.data["error"]["code"] == "internal_error"
    # The failed save of the complete reply did not count as saved: the reply is kept, marked partial.
    text = "".join(f.data["token"] for f in frames if f.event == "token")
    assert stored[1:] == [{"role": "assistant", "content": text, "meta": {"partial": True}}]
    assert [r for r in caplog.records if r.getMessage().startswith("stream failed")]


def test_a_nul_from_the_provider_is_kept_as_a_replacement_character_on_every_store(
    live_server: Callable[..., LiveServer], database_url: str
) -> None:
    fake = FakeOpenAI(Reply(tokens=["zero", "\x00", "byte"]))
    fake.url = live_server(fake).url
    server = live_server(create_app(database_url=database_url, **fake.options()))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        body = {"userId": "nul", "messages": [{"role": "user", "content": "hi"}], "params": {"model": "gpt-4.1"}}
        last = check_grammar(parse_frames(http.post("/chat/stream", json=body).content))
        stored = http.get("/chat/history", params={"userId": "nul"}).json()["messages"]
    # The client sees what the provider sent; every store keeps the same text, which PostgreSQL can hold.
    assert last.event == "done" and last.data["message"]["content"] == "zero\x00byte"
    assert stored[1:] == [{"role": "assistant", "content": "zero\ufffdbyte", "meta": None}]


@pytest.mark.anyio
async def test_a_client_resending_the_conversation_gets_the_stored_parts_into_the_context(database_url: str) -> None:
    # ai-chat-kit resends every message; its copy of a tool turn's reply has no parts (nor their state). The mock
    # opens a reply with one line per tool result of the context's last message: here the resent reply's.
    calls = [{"name": "get_weather", "args": {"city": "Oslo"}}]
    said = 'Tool get_weather returned {"city":"Oslo","celsius":21}.\n\n'
    async with in_process(create_app(database_url=database_url, tools=[get_weather])) as http:
        first = check_grammar(
            parse_frames((await turn(http, tool_body("kit", "Oslo?", calls, reasoning="Hm."))).content)
        )
        content = first.data["message"]["content"]
        resent = [{"role": "user", "content": "Oslo?"}, {"role": "assistant", "content": content}]
        again = {"userId": "kit", "messages": resent, "params": {"mock": {"tokenDelayMs": 0, "reasoning": "Hm."}}}
        second = check_grammar(parse_frames((await turn(http, again)).content))
        kept = (await http.get("/chat/history", params={"userId": "kit"})).json()["messages"]
    assert second.event == "done" and second.data["message"]["content"].startswith(said)
    # The resent messages were already stored: only the new reply was added, the first one's parts kept.
    assert [m["content"] for m in kept] == ["Oslo?", content, second.data["message"]["content"]]
    assert [p["type"] for p in kept[1]["meta"]["parts"]] == ["reasoning", "tool_call", "tool_result", "text"]
