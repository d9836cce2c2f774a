"""lean_chat's streams read by real third-party SSE clients, as apps use them: eventsource-parser and
@microsoft/fetch-event-source under Node (tests/js, installed from its lockfile), and httpx-sse."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from starlette.types import ASGIApp, Receive, Scope, Send

from lean_chat import create_app
from tests.support.live_server import LiveServer
from tests.support.npm import JS, NODE, npm_ci
from tests.support.services import needs
from tests.support.upstreams import FakeOpenAI, Reply

# The first two run under Node.
CLIENTS = [
    pytest.param("eventsource-parser", marks=pytest.mark.node),
    pytest.param("fetch-event-source", marks=pytest.mark.node),
    pytest.param("httpx-sse"),
]
HOSTILE = (
    'He said "hi" \\ back\\slash\\n\nnew line\r\ncr\rLS\u2028PS\u2029NEL\x85 {"json": [1]} data: x\n\n'
    "event: done\n: not a comment 👩🏽‍💻🎉 東京 naïve \u200b\ufeff \U0010fffd end"
)
SEPARATORS = ("\u2028".encode(), "\u2029".encode(), "\x85".encode())


class StreamCounter:
    """Counts `POST /chat/stream` requests on their way to the app (a client that retries shows here)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.streams = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count, then pass on."""
        if scope["type"] == "http" and scope["path"] == "/chat/stream" and scope["method"] == "POST":
            self.streams += 1
        await self.app(scope, receive, send)


@dataclass
class Seen:
    """What the app behind a client saw of one stream."""

    status: int
    tokens: list[str]
    done: Any
    error: Any
    messages: int
    empty: int
    parse_failures: list[str]
    library_errors: list[str]


def read_with_httpx_sse(url: str, body: dict[str, Any]) -> Seen:
    """The stream through httpx-sse, handled as an app would (JSON.parse of every message)."""
    seen = Seen(0, [], None, None, 0, 0, [], [])
    with httpx.Client(timeout=60) as http, connect_sse(http, "POST", url, json=body) as source:
        seen.status = source.response.status_code
        for event in source.iter_sse():
            seen.messages += 1
            seen.empty += event.data == ""
            try:
                payload = json.loads(event.data)
            except ValueError as exc:
                seen.parse_failures.append(str(exc))
                continue
            if event.event == "token":
                seen.tokens.append(payload["token"])
            elif event.event == "done":
                seen.done = payload
            elif event.event == "error":
                seen.error = payload["error"]
    return seen


def read_with(client: str, url: str, body: dict[str, Any]) -> Seen:
    """The stream through one client."""
    if client == "httpx-sse":
        return read_with_httpx_sse(url, body)
    needs("node")
    npm_ci(JS)
    result = subprocess.run(
        [NODE, str(JS / "sse_clients.mjs"), client, url, json.dumps(body)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=JS,
    )
    assert result.returncode == 0, result.stderr
    raw = json.loads(result.stdout)
    return Seen(
        raw["status"],
        raw["tokens"],
        raw["done"],
        raw["error"],
        raw["messages"],
        raw["empty"],
        raw["parseFailures"],
        raw["libraryErrors"],
    )


@dataclass
class Chat:
    """One chat against a live server: what the client's app saw, the requests the server got, the history."""

    seen: Seen
    requests: int
    history: list[dict[str, Any]]
    wire: bytes


def chat(
    live_server: Callable[..., LiveServer], sqlite_path: str, client: str, body: dict[str, Any], **settings: Any
) -> Chat:
    """Serve a fresh app (heartbeat every 10 ms), read one stream through `client`, then read the wire and history."""
    counter = StreamCounter(create_app(sqlite_path=sqlite_path, heartbeat_seconds=0.01, **settings))
    server = live_server(counter)
    seen = read_with(client, f"{server.url}/chat/stream", body)
    requests = counter.streams
    with httpx.Client(base_url=server.url, timeout=60) as http:
        conversation = body["params"]["conversationId"]
        history = http.get("/chat/conversation", params={"userId": body["userId"], "conversationId": conversation})
        # The same chat once more, raw, for the bytes on the wire (another user: the history above stays as it was).
        raw_params = {**body["params"], "conversationId": conversation + "-raw"}
        wire = http.post("/chat/stream", json={**body, "userId": body["userId"] + "-raw", "params": raw_params}).content
    return Chat(seen, requests, history.json()["messages"], wire)


def body_for(client: str, case: str, text: str, **params: Any) -> dict[str, Any]:
    """A stream body for one user and conversation of this case."""
    user = f"{case}-{client}"
    params = {"conversationId": f"{user}-c", **params}
    return {"userId": user, "messages": [{"role": "user", "content": text}], "params": params}


def assert_clean(chat: Chat) -> None:
    """One request, no empty message, nothing the app could not parse, no library error."""
    seen = chat.seen
    assert seen.status == 200
    assert chat.requests == 1, f"the client sent {chat.requests} requests for one chat"
    assert seen.empty == 0, f"{seen.empty} empty messages reached the app"
    assert seen.parse_failures == [] and seen.library_errors == [], (seen.parse_failures, seen.library_errors)
    assert seen.messages == len(seen.tokens) + 1  # every message is a token, then one done or error
    assert not any(separator in chat.wire for separator in SEPARATORS)


@pytest.mark.parametrize("client", CLIENTS)
def test_hostile_text_with_heartbeats_between_tokens(
    live_server: Callable[..., LiveServer], sqlite_path: str, client: str
) -> None:
    body = body_for(client, "hostile", HOSTILE, mock={"tokenDelayMs": 25, "targetChars": 400})
    result = chat(live_server, sqlite_path, client, body)
    assert_clean(result)
    assert result.wire.count(b": ping\n") >= 3, "no heartbeats between tokens"
    content = result.seen.done["message"]["content"]
    assert "".join(result.seen.tokens) == content
    assert HOSTILE.strip() in content
    assert [m["role"] for m in result.history] == ["user", "assistant"]
    assert result.history[1]["content"] == content


@pytest.mark.parametrize("client", CLIENTS)
def test_long_reply(live_server: Callable[..., LiveServer], sqlite_path: str, client: str) -> None:
    body = body_for(client, "long", "a long one " + HOSTILE, mock={"tokenDelayMs": 0, "targetChars": 8000})
    result = chat(live_server, sqlite_path, client, body)
    assert_clean(result)
    content = result.seen.done["message"]["content"]
    assert len(result.seen.tokens) > 2000 and len(content) >= 8000
    assert "".join(result.seen.tokens) == content == result.history[1]["content"]


@pytest.mark.parametrize("client", CLIENTS)
def test_error_frame_for_an_unconfigured_provider(
    live_server: Callable[..., LiveServer], sqlite_path: str, client: str
) -> None:
    result = chat(live_server, sqlite_path, client, body_for(client, "unconfigured", "hi", model="claude-3-5-sonnet"))
    assert_clean(result)
    assert result.seen.tokens == [] and result.seen.done is None
    assert result.seen.error == {
        "message": "Provider 'anthropic' is not configured (missing API key).",
        "code": "provider_not_configured",
    }


@pytest.mark.parametrize("client", CLIENTS)
def test_error_frame_after_tokens(live_server: Callable[..., LiveServer], sqlite_path: str, client: str) -> None:
    tokens = ["Grüße", " ", '"q"', "\u2028", "\\", "\n", "🎉", "\r\n", "\x85", "end"]
    fake = FakeOpenAI(Reply(tokens=tokens, fail_after=6, token_delay=0.03))
    upstream = live_server(fake)
    body = body_for(client, "midway", "hi", model="gpt-4.1")
    result = chat(live_server, sqlite_path, client, body, **fake.options(upstream.url))
    assert_clean(result)
    assert result.seen.tokens == tokens[:6] and result.seen.done is None
    assert result.seen.error["message"].startswith("openai failed for model 'gpt-4.1': ")
    assert [(m["role"], m["content"], m["meta"]) for m in result.history][1:] == [
        ("assistant", "".join(tokens[:6]), {"partial": True})
    ]
