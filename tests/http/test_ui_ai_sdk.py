"""`/chat/ui` read by the AI SDK's own client under Node (tests/ai_sdk, `ai` pinned in its lockfile):
DefaultChatTransport + readUIMessageStream against a live lean_chat, every chunk checked by the package's schema."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from lean_chat import create_app
from lean_chat.tools.demo import get_weather
from tests.support.live_server import LiveServer
from tests.support.npm import AI_SDK, run_node
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.node

FAST = {"tokenDelayMs": 0, "targetChars": 300}


async def bearer_user(request: Request) -> str | None:
    """The `authenticate` hook of these apps: the bearer token is the user (a stand-in for a real session)."""
    header = request.headers.get("authorization", "")
    return header.removeprefix("Bearer ").strip() or None


def user_message(message_id: str, text: str) -> dict[str, Any]:
    """A UIMessage as useChat makes one for `sendMessage({text})`."""
    return {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]}


def client(base: str, *steps: dict[str, Any], timeout: float = 120) -> list[dict[str, Any]]:
    """Run the steps through ui_client.mjs; each step's result, after checking no chunk was refused."""
    results: list[dict[str, Any]] = run_node(AI_SDK, "ui_client.mjs", base, json.dumps(steps), timeout=timeout)
    for result in results:
        assert result["rejected"] == [], result
    return results


def text_of(message: dict[str, Any]) -> str:
    """The text parts of a UIMessage, joined."""
    return "".join(part["text"] for part in message["parts"] if part["type"] == "text")


@pytest.fixture
def server(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    """lean_chat (SQLite history) whose callers are named by the `authenticate` hook, as a useChat app's are."""
    app = create_app(sqlite_path=str(tmp_path / "chat.sqlite3"), authenticate=bearer_user, tools=[get_weather])
    return live_server(app)


def test_a_reply_streams_as_chunks_the_sdk_accepts_and_history_agrees(server: LiveServer) -> None:
    sent = user_message("u-1", "Hello there")
    send, history = client(
        server.url,
        {"op": "send", "user": "ann", "chatId": "chat-1", "messages": [sent], "body": {"mock": FAST}},
        {"op": "messages", "user": "ann", "chatId": "chat-1"},
    )
    assert send["status"] == 200 and "error" not in send, send
    assert send["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    kinds = [chunk["type"] for chunk in send["chunks"]]
    assert kinds[:3] == ["start", "start-step", "text-start"]
    assert kinds[-3:] == ["text-end", "finish-step", "finish"]
    assert set(kinds[3:-3]) == {"text-delta"} and len(kinds) > 20
    finish = send["chunks"][-1]
    assert finish["finishReason"] == "stop"
    assert finish["messageMetadata"]["provider"] == "mock:gpt-4.1" and finish["messageMetadata"]["usage"]["tokens"] > 0
    reply = send["message"]
    assert reply["id"] == send["chunks"][0]["messageId"] and reply["role"] == "assistant"
    assert text_of(reply).startswith("Mock reply (mock): Hello there")
    assert history["status"] == 200 and history["valid"] is True, history
    assert [m["id"] for m in history["messages"]] == ["u-1", reply["id"]]
    assert text_of(history["messages"][1]) == text_of(reply)


def test_reasoning_and_tool_calls_arrive_as_the_sdk_parts_and_history_agrees(server: LiveServer) -> None:
    knobs = {
        **FAST,
        "reasoning": "The user wants the weather; I will look it up.",
        "toolCalls": [{"name": "get_weather", "args": {"city": "Paris"}}, {"name": "no_such_tool", "args": {}}],
    }
    send, history = client(
        server.url,
        {
            "op": "send",
            "user": "tia",
            "chatId": "tools",
            "messages": [user_message("w", "Weather?")],
            "body": {"mock": knobs},
        },
        {"op": "messages", "user": "tia", "chatId": "tools"},
    )
    assert "error" not in send, send
    kinds = [chunk["type"] for chunk in send["chunks"]]
    for kind in ("reasoning-start", "reasoning-delta", "reasoning-end", "tool-input-start", "tool-input-available"):
        assert kind in kinds
    assert {"tool-output-available", "tool-output-error"} <= set(kinds)
    assert kinds.count("start-step") == kinds.count("finish-step") == 2
    parts = send["message"]["parts"]
    assert [p["type"] for p in parts][:2] == ["step-start", "reasoning"]
    assert parts[1]["text"] == knobs["reasoning"]
    weather = next(p for p in parts if p["type"] == "tool-get_weather")
    assert weather["state"] == "output-available" and weather["input"] == {"city": "Paris"}
    assert weather["output"]["city"] == "Paris"
    unknown = next(p for p in parts if p["type"] == "tool-no_such_tool")
    assert unknown["state"] == "output-error" and unknown["errorText"]
    assert text_of(send["message"]).startswith('Tool get_weather returned {"city":"Paris"')  # the second step
    assert history["valid"] is True, history
    kept = history["messages"][1]
    assert kept["id"] == send["message"]["id"]

    def seen(part: dict[str, Any]) -> tuple[Any, ...]:
        """What a part shows (a text's `state` is the client's own: `done` once streamed)."""
        return part["type"], part.get("text"), part.get("input"), part.get("output"), part.get("errorText")

    assert [seen(p) for p in kept["parts"]] == [seen(p) for p in send["message"]["parts"]]
    assert [p.get("state") for p in kept["parts"] if p["type"].startswith("tool-")] == [
        "output-available",
        "output-error",
    ]


def test_heartbeats_stay_invisible_to_the_sdk(live_server: Callable[..., LiveServer], tmp_path: Path) -> None:
    app = create_app(sqlite_path=str(tmp_path / "beat.sqlite3"), authenticate=bearer_user, heartbeat_seconds=0.02)
    beating = live_server(app)
    slow = {"tokenDelayMs": 80, "targetChars": 250, "includePrefix": False}
    with httpx.Client(timeout=30) as http:  # the pings are there on the wire...
        raw = http.post(
            f"{beating.url}/chat/ui",
            json={"id": "raw", "messages": [user_message("r", "hi")], "mock": slow},
            headers={"Authorization": "Bearer hal"},
        ).content
    assert b": ping\n" in raw and b": ping\n\n" not in raw  # a comment line, never an (empty) event of its own
    (send,) = client(
        beating.url,
        {"op": "send", "user": "hal", "chatId": "beat", "messages": [user_message("b", "hi")], "body": {"mock": slow}},
    )
    assert "error" not in send and send["chunks"][-1]["type"] == "finish"  # ...and the SDK never sees them
    assert text_of(send["message"]) == "".join(c["delta"] for c in send["chunks"] if c["type"] == "text-delta")


def test_an_error_arrives_as_the_sdk_error_with_our_message(server: LiveServer) -> None:
    (send,) = client(
        server.url,
        {
            "op": "send",
            "user": "bob",
            "chatId": "c",
            "messages": [user_message("m", "hi")],
            "body": {"model": "gpt-4o"},
        },
    )
    assert send["error"] == "Provider 'openai' is not configured (missing API key)."
    error = send["chunks"][-1]
    assert error["type"] == "error" and error["code"] == "provider_not_configured"


def test_regenerate_replaces_the_reply_in_the_history(server: LiveServer) -> None:
    first = user_message("q", "Tell me")
    (one,) = client(
        server.url, {"op": "send", "user": "cy", "chatId": "r", "messages": [first], "body": {"mock": FAST}}
    )
    old_id = one["message"]["id"]
    again, history = client(
        server.url,
        {
            "op": "send",
            "user": "cy",
            "chatId": "r",
            "messages": [first],  # useChat drops the reply it regenerates from its list
            "trigger": "regenerate-message",
            "messageId": old_id,
            "body": {"mock": {**FAST, "targetChars": 400}},
        },
        {"op": "messages", "user": "cy", "chatId": "r"},
    )
    new_id = again["message"]["id"]
    assert new_id != old_id
    assert [m["id"] for m in history["messages"]] == ["q", new_id]
    assert text_of(history["messages"][1]) == text_of(again["message"])
    assert len(text_of(again["message"])) >= 400 > len(text_of(one["message"]))


def test_a_reconnect_with_nothing_running_gets_204(server: LiveServer) -> None:
    (reconnect,) = client(server.url, {"op": "reconnect", "user": "dee", "chatId": "idle"})
    assert reconnect["noContent"] is True and "error" not in reconnect


@pytest.mark.postgres
@pytest.mark.redis
def test_a_running_stream_resumes_on_a_second_instance_with_postgres_and_redis(
    redis_options: dict[str, Any], live_server: Callable[..., LiveServer]
) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(temporary_database())
        options = {"database_url": url, **redis_options, "authenticate": bearer_user, "tools": [get_weather]}
        a = live_server(create_app(**options))
        b = live_server(create_app(**options))
        slow = {
            "tokenDelayMs": 25,
            "targetChars": 600,
            "reasoning": "Thinking it over.",
            "toolCalls": [{"name": "get_weather", "args": {"city": "Oslo"}}],
        }
        message = user_message("p1", "Resume me")
        body = {"mock": slow, "resume": True}
        (cut,) = client(
            a.url,
            {"op": "send", "user": "eve", "chatId": "two", "messages": [message], "body": body, "abortAfter": 5},
        )
        assert cut["chunks"][0]["type"] == "start" and "finish" not in [c["type"] for c in cut["chunks"]]
        (resumed,) = client(b.url, {"op": "reconnect", "user": "eve", "chatId": "two"})
        assert resumed["noContent"] is False and "error" not in resumed, resumed
        assert resumed["chunks"][0] == cut["chunks"][0]  # the same reply id: a replay from its start
        assert resumed["chunks"][-1]["type"] == "finish"
        parts = resumed["message"]["parts"]  # the kept event frames, reframed on the other instance
        assert [p["type"] for p in parts][:3] == ["step-start", "reasoning", "tool-get_weather"]
        assert parts[2]["state"] == "output-available" and parts[2]["output"]["city"] == "Oslo"
        deadline = time.monotonic() + 10
        with httpx.Client(timeout=10) as http:
            while True:
                stored = http.get(f"{b.url}/chat/ui/two/messages", headers={"Authorization": "Bearer eve"}).json()
                if len(stored) == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        assert [m["id"] for m in stored] == ["p1", cut["chunks"][0]["messageId"]]
        assert text_of(stored[1]) == text_of(resumed["message"])
        (after,) = client(a.url, {"op": "reconnect", "user": "eve", "chatId": "two"})
        assert after["noContent"] is True
