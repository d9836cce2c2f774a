"""The AI SDK dialect's endpoints (http/ui_endpoints.py): one history through both dialects, regenerate and edit,
ownership, auth, refusals, Stop and resume of a `/chat/ui` stream, the OpenAPI document."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from lean_chat import create_app
from tests.support.apps import in_process, reply_to
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.anyio

FAST = {"tokenDelayMs": 0, "targetChars": 250}


def user(message_id: str, text: str) -> dict[str, Any]:
    """A user UIMessage."""
    return {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]}


def ui_body(chat_id: str, *messages: dict[str, Any], user_id: str | None = "ann", **options: Any) -> dict[str, Any]:
    """A `DefaultChatTransport` body with a quick mock (options beside the transport's fields, as `body:` puts them)."""
    found: dict[str, Any] = {"id": chat_id, "messages": list(messages), "trigger": "submit-message", "mock": FAST}
    if user_id is not None:
        found["userId"] = user_id
    return {**found, **options}


def chunks(data: bytes) -> list[Any]:
    """The chunks of a UI message stream (`[DONE]` as the string), comments skipped."""
    found: list[Any] = []
    for event in data.split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data: "):
                text = line[len(b"data: ") :]
                found.append("[DONE]" if text == b"[DONE]" else json.loads(text))
    return found


def text_of(found: list[Any]) -> str:
    """The text the deltas carried."""
    return "".join(c["delta"] for c in found if isinstance(c, dict) and c["type"] == "text-delta")


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, SQLite history."""
    async with in_process(sqlite_path=str(tmp_path / "chat.sqlite3")) as client:
        yield client


async def send(http: httpx.AsyncClient, body: dict[str, Any]) -> list[Any]:
    """POST /chat/ui; its chunks."""
    response = await http.post("/chat/ui", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    return chunks(response.content)


async def stored(http: httpx.AsyncClient, chat_id: str, user_id: str = "ann") -> list[dict[str, Any]]:
    """The conversation through `/chat/conversation`."""
    response = await http.get("/chat/conversation", params={"userId": user_id, "conversationId": chat_id})
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def ui_history(http: httpx.AsyncClient, chat_id: str, user_id: str = "ann") -> list[dict[str, Any]]:
    """The conversation through `/chat/ui/{chatId}/messages`."""
    response = await http.get(f"/chat/ui/{chat_id}/messages", params={"userId": user_id})
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()
    return found


async def test_the_same_turn_through_both_dialects_stores_the_same_history(http: httpx.AsyncClient) -> None:
    await reply_to(http, "ann", "Same words", "plain")
    await send(http, ui_body("ui", user("u1", "Same words"), mock={"tokenDelayMs": 0}))  # reply_to's knobs
    plain, ui = await stored(http, "plain"), await stored(http, "ui")
    assert [(m["role"], m["content"]) for m in plain] == [(m["role"], m["content"]) for m in ui]
    assert len(ui) == 2 and ui[0]["meta"] == {"id": "u1"} and ui[1]["meta"]["id"].startswith("lc")


async def test_each_dialect_reads_and_continues_what_the_other_wrote(http: httpx.AsyncClient) -> None:
    done = await reply_to(http, "ann", "First", "mixed")
    history = await ui_history(http, "mixed")
    assert [m["id"] for m in history] == ["lc-0", "lc-1"]
    assert history[1]["parts"] == [{"type": "text", "text": done["message"]["content"]}]
    found = await send(http, ui_body("mixed", *history, user("u2", "Second")))
    assert found[-2]["type"] == "finish" and found[-1] == "[DONE]"
    messages = await stored(http, "mixed")
    assert [m["content"] for m in messages[:3]] == ["First", done["message"]["content"], "Second"]
    assert len(messages) == 4 and messages[3]["content"] == text_of(found)
    plain = await reply_to(http, "ann", "Third", "mixed")  # /chat/stream's merge: stored + the new message
    assert plain["message"]["content"].startswith("Mock reply (mock): Third")
    assert [m["id"] for m in await ui_history(http, "mixed")][:3] == ["lc-0", "lc-1", "u2"]
    assert len(await ui_history(http, "mixed")) == 6


async def test_only_messages_the_server_does_not_have_are_stored(http: httpx.AsyncClient) -> None:
    first = await send(http, ui_body("dedupe", user("a", "One")))
    reply = {"id": first[0]["messageId"], "role": "assistant", "parts": [{"type": "text", "text": text_of(first)}]}
    await send(http, ui_body("dedupe", user("a", "One"), reply, user("b", "Two")))
    await send(http, ui_body("dedupe", user("c", "Three")))  # only the newest message, as some apps send
    ids = [m["meta"]["id"] for m in await stored(http, "dedupe")]
    assert ids[0::2] == ["a", "b", "c"] and ids[1] == first[0]["messageId"] and len(ids) == 6


async def test_regenerate_replaces_the_last_reply_or_the_one_named(http: httpx.AsyncClient) -> None:
    one = await send(http, ui_body("regen", user("q1", "Q1")))
    two = await send(http, ui_body("regen", user("q2", "Q2")))
    again = await send(http, ui_body("regen", user("q1", "Q1"), user("q2", "Q2"), trigger="regenerate-message"))
    ids = [m["id"] for m in await ui_history(http, "regen")]
    assert ids == ["q1", one[0]["messageId"], "q2", again[0]["messageId"]]
    assert two[0]["messageId"] not in ids
    named = await send(
        http, ui_body("regen", user("q1", "Q1"), trigger="regenerate-message", messageId=one[0]["messageId"])
    )
    assert [m["id"] for m in await ui_history(http, "regen")] == ["q1", named[0]["messageId"]]


async def test_an_edited_message_replaces_it_and_what_followed(http: httpx.AsyncClient) -> None:
    await send(http, ui_body("edit", user("e1", "Before")))
    await send(http, ui_body("edit", user("e1", "After"), messageId="e1"))
    messages = await stored(http, "edit")
    assert [m["content"] for m in messages][0] == "After" and len(messages) == 2
    assert messages[1]["content"].startswith("Mock reply (mock): After")


async def test_another_users_chat_is_neither_changed_nor_shown(http: httpx.AsyncClient) -> None:
    await send(http, ui_body("private", user("p", "Secret")))
    before = await stored(http, "private")
    attack = await send(
        http, ui_body("private", user("x", "Mine now"), user_id="mallory", trigger="regenerate-message")
    )
    assert [c if isinstance(c, str) else c["type"] for c in attack] == ["start", "start-step", "error", "[DONE]"]
    assert attack[2]["code"] == "conversation_forbidden"
    assert await stored(http, "private") == before
    assert await ui_history(http, "private", "mallory") == []
    resume = await http.get("/chat/ui/private/stream", params={"userId": "mallory"})
    assert resume.status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "where", "says"),
    [
        (ui_body("c", {"id": "f", "role": "user", "parts": [{"type": "file", "url": "x"}]}), 422, "type", "'file'"),
        (ui_body("c", {"id": "f", "role": "user", "parts": [{"type": "data-x"}]}), 422, "type", "'data-x'"),
        (ui_body("c", {"id": "f", "role": "tool", "parts": []}), 422, "role", "'system', 'user'"),
        (ui_body("c", {"id": "f", "role": "user"}), 422, "parts", "Field required"),
        (ui_body("c" * 300, user("m", "x")), 422, "id", "at most 256"),
        (ui_body("c", user("m" * 300, "x")), 422, "id", "at most 256"),
        (ui_body("c", user("m", "x"), user_id=None), 422, "userId", "Field required"),
        (ui_body("c", user("m", "x"), trigger="resume-stream"), 422, "trigger", "'submit-message'"),
        (ui_body("c", user("m", "a\x00b")), 422, "text", "U+0000"),
    ],
)
async def test_bad_requests_are_refused_naming_what_is_wrong(
    http: httpx.AsyncClient, body: dict[str, Any], status: int, where: str, says: str
) -> None:
    response = await http.post("/chat/ui", json=body)
    assert response.status_code == status
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == where and says in error["msg"]


async def test_a_body_declared_as_something_else_than_json_is_refused(http: httpx.AsyncClient) -> None:
    raw = json.dumps(ui_body("c", user("m", "x"))).encode()
    response = await http.post("/chat/ui", content=raw, headers={"content-type": "text/plain"})
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "model_attributes_type"


async def test_limits_apply_to_ui_messages(tmp_path: Path) -> None:
    async with in_process(sqlite_path=str(tmp_path / "l.sqlite3"), max_message_chars=10) as http:
        response = await http.post("/chat/ui", json=ui_body("c", user("m", "x" * 11)))
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "messages", 0, "parts"]


async def test_the_openapi_document_describes_the_dialect(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    post = document["paths"]["/chat/ui"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UIChatRequest"
    }
    events = post["responses"]["200"]["content"]["text/event-stream"]
    assert "x-vercel-ai-ui-message-stream" in post["responses"]["200"]["description"]
    assert {"$ref": "#/components/schemas/TextDeltaChunk"} in events["schema"]["oneOf"]
    assert "204" in document["paths"]["/chat/ui/{chatId}/stream"]["get"]["responses"]
    listed = document["paths"]["/chat/ui/{chatId}/messages"]["get"]["responses"]["200"]["content"]
    assert listed["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/UIMessage"},
    }


async def test_without_persistence_the_dialect_still_keeps_the_turns_apart(tmp_path: Path) -> None:
    async with in_process(sqlite_path="") as http:
        first = await send(http, ui_body("m", user("a", "One")))
        reply = {"id": first[0]["messageId"], "role": "assistant", "parts": [{"type": "text", "text": text_of(first)}]}
        await send(http, ui_body("m", user("a", "One"), reply, user("b", "Two")))
        history = await ui_history(http, "m")
        assert [m["id"] for m in history[:3]] == ["a", first[0]["messageId"], "b"] and len(history) == 4
        assert await stored(http, "m") == []  # the reference's answer without persistence, unchanged


async def bearer(request: Request) -> str | None:
    """An `authenticate` hook: the bearer token names the user."""
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None


async def test_the_authenticated_caller_is_the_user(tmp_path: Path) -> None:
    app = create_app(sqlite_path=str(tmp_path / "a.sqlite3"), authenticate=bearer)
    async with in_process(app) as http:
        signed = {"Authorization": "Bearer zoe"}
        response = await http.post("/chat/ui", json=ui_body("z", user("m", "hi"), user_id=None), headers=signed)
        assert response.status_code == 200 and chunks(response.content)[-2]["type"] == "finish"
        assert len((await http.get("/chat/ui/z/messages", headers=signed)).json()) == 2
        other = await http.post("/chat/ui", json=ui_body("z", user("m", "hi"), user_id="yan"), headers=signed)
        assert other.status_code == 403
        assert (await http.post("/chat/ui", json=ui_body("z", user("m", "hi")))).status_code == 401


async def test_the_fastapi_shim_serves_the_dialect(tmp_path: Path) -> None:
    from lean_chat.compat import create_app as create_fastapi_app

    app = create_fastapi_app(sqlite_path=str(tmp_path / "shim.sqlite3"))
    async with in_process(app) as http:
        found = await send(http, ui_body("shim", user("s", "Through FastAPI")))
        assert found[-2]["type"] == "finish"
        assert [m["id"] for m in await ui_history(http, "shim")] == ["s", found[0]["messageId"]]


class Reader(threading.Thread):
    """A UI stream read to its end in a thread; `started` is set at its first text delta."""

    def __init__(self, url: str, method: str, path: str, **options: Any) -> None:
        super().__init__(daemon=True)
        self.url, self.method, self.path, self.options = url, method, path, options
        self.started = threading.Event()
        self.data = b""
        self.status = 0
        self.start()

    def run(self) -> None:
        with (
            httpx.Client(base_url=self.url, timeout=20) as http,
            http.stream(self.method, self.path, **self.options) as response,
        ):
            self.status = response.status_code
            for chunk in response.iter_bytes():
                self.data += chunk
                if b"text-delta" in self.data:
                    self.started.set()
        self.started.set()


@pytest.fixture
def server(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    """The app under uvicorn, SQLite history."""
    return live_server(create_app(sqlite_path=str(tmp_path / "live.sqlite3")))


def test_chat_stop_stops_a_ui_stream(server: LiveServer) -> None:
    slow = ui_body("stop", user("s", "Go"), mock={"tokenDelayMs": 20, "targetChars": 4000})
    reader = Reader(server.url, "POST", "/chat/ui", json=slow)
    assert reader.started.wait(10)
    answer = httpx.post(f"{server.url}/chat/stop", json={"userId": "ann", "conversationId": "stop"}, timeout=10)
    assert answer.json() == {"ok": True, "stopped": True}
    reader.join(10)
    found = chunks(reader.data)
    assert found[-2]["type"] == "finish" and found[-2]["messageMetadata"]["stopped"] is True
    assert found[-3]["type"] == "finish-step" and found[-4]["type"] == "text-end"
    messages = httpx.get(
        f"{server.url}/chat/conversation", params={"userId": "ann", "conversationId": "stop"}, timeout=10
    ).json()["messages"]
    assert messages[1]["content"] == text_of(found) and len(text_of(found)) < 4000
    assert messages[1]["meta"] == {"id": found[0]["messageId"], "partial": True, "stopped": True}


def test_a_resumable_ui_stream_is_replayed_from_its_start_then_204(server: LiveServer) -> None:
    slow = ui_body("res", user("r", "Go"), resume=True, mock={"tokenDelayMs": 15, "targetChars": 600})
    first = Reader(server.url, "POST", "/chat/ui", json=slow)
    assert first.started.wait(10)
    again = Reader(server.url, "GET", "/chat/ui/res/stream", params={"userId": "ann"})
    first.join(20)
    again.join(20)
    assert again.status == 200
    assert chunks(again.data) == chunks(first.data)  # the same chunks, replayed from the start
    assert chunks(again.data)[-1] == "[DONE]"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        late = httpx.get(f"{server.url}/chat/ui/res/stream", params={"userId": "ann"}, timeout=10)
        if late.status_code == 204:
            break
        time.sleep(0.05)
    assert late.status_code == 204 and late.content == b""


def test_a_regenerate_refused_by_the_stream_limit_drops_nothing(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server(create_app(sqlite_path=str(tmp_path / "limit.sqlite3"), max_streams_per_user=1))
    with httpx.Client(base_url=server.url, timeout=20) as http:
        first = chunks(http.post("/chat/ui", json=ui_body("kept", user("k", "Keep me"))).content)
        busy = Reader(
            server.url, "POST", "/chat/ui", json=ui_body("other", user("o", "Busy"), mock={"tokenDelayMs": 20})
        )
        assert busy.started.wait(10)
        refused = http.post("/chat/ui", json=ui_body("kept", user("k", "Keep me"), trigger="regenerate-message"))
        assert refused.status_code == 429
        history = http.get("/chat/ui/kept/messages", params={"userId": "ann"}).json()
        assert [m["id"] for m in history] == ["k", first[0]["messageId"]]
        http.post("/chat/stop", json={"userId": "ann", "conversationId": "other"})
        busy.join(10)
