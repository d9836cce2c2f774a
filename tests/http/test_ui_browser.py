"""A React page on the AI SDK's `useChat` (tests/ai_sdk/page, built by esbuild from the pinned packages) in Chromium
against lean_chat's `/chat/ui`: send and watch tokens arrive, Stop, reload and resume. Assertions on the DOM."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from lean_chat import create_app
from tests.support.browser import chromium_page
from tests.support.live_server import LiveServer
from tests.support.npm import AI_SDK, run_node

pytestmark = [pytest.mark.browser, pytest.mark.node]

HTML = b'<!doctype html><meta charset="utf-8"><title>useChat</title><div id="root"></div>'
HTML += b'<script type="module" src="/chat.js"></script>'


async def bearer(request: Request) -> str | None:
    """The page's `authenticate` hook: the bearer token names the user."""
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None


class PageAndApi:
    """The page (`/`, `/chat.js`) and, for everything else, lean_chat: one origin, as an app deploys it."""

    def __init__(self, api: ASGIApp, script: bytes) -> None:
        self.api = api
        self.files = {"/": (b"text/html", HTML), "/chat.js": (b"text/javascript", script)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a file, or pass on."""
        found = self.files.get(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None or scope["method"] != "GET":
            await self.api(scope, receive, send)
            return
        kind, body = found
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The page's script, built from the pinned packages."""
    out = tmp_path_factory.mktemp("page") / "chat.js"
    run_node(AI_SDK, "page/build.mjs", str(out))
    return out.read_bytes()


@pytest.fixture
def server(live_server: Callable[..., LiveServer], tmp_path: Path, script: bytes) -> LiveServer:
    """lean_chat (SQLite) behind the page, callers named by the bearer hook."""
    api = create_app(sqlite_path=str(tmp_path / "page.sqlite3"), authenticate=bearer)
    return live_server(PageAndApi(api, script))


@pytest.fixture
def page() -> Iterator[Page]:
    """A Chromium page; page errors fail the test (console errors too, but for the aborted fetch of a Stop)."""
    problems: list[str] = []
    with chromium_page(problems, console_errors=False) as found:
        yield found
    assert problems == []


def stored(server: LiveServer, chat: str, user: str) -> list[dict[str, Any]]:
    """The chat as the server keeps it."""
    params, signed = {"userId": user, "conversationId": chat}, {"Authorization": f"Bearer {user}"}
    answer = httpx.get(f"{server.url}/chat/conversation", params=params, headers=signed, timeout=10)
    messages: list[dict[str, Any]] = answer.json()["messages"]
    return messages


def open_page(page: Page, server: LiveServer, chat: str, user: str, **query: str) -> None:
    """Open the page on this chat and wait until useChat is ready."""
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    page.goto(f"{server.url}/?chat={chat}&user={user}{extra}")
    page.wait_for_selector("#chat[data-status='ready']", timeout=15000)


def send(page: Page, text: str) -> None:
    """Type and send a message."""
    page.fill("#prompt", text)
    page.click("#send")


def reply_text(page: Page) -> str:
    """The last assistant message shown."""
    return page.locator(".msg.assistant").last.text_content() or ""  # textContent: whitespace as sent


def wait_for_reply_chars(page: Page, chars: int) -> None:
    """Until the shown reply holds more than `chars` characters."""
    page.wait_for_function(
        "n => { const r = [...document.querySelectorAll('.msg.assistant')].pop();"
        " return r && r.textContent.length > n; }",
        arg=chars,
        timeout=15000,
    )


def test_send_and_watch_the_tokens_arrive(page: Page, server: LiveServer) -> None:
    open_page(page, server, "send", "sam", delay="20", chars="500")
    send(page, "Hello page")
    wait_for_reply_chars(page, 30)
    assert page.get_attribute("#chat", "data-status") == "streaming"
    early = reply_text(page)
    page.wait_for_selector("#chat[data-status='ready']", timeout=30000)
    final = reply_text(page)
    assert final.startswith(early) and len(final) > len(early) >= 30
    assert final.startswith("Mock reply (mock): Hello page")
    kept = stored(server, "send", "sam")
    assert [m["content"] for m in kept] == ["Hello page", final]
    assert page.get_attribute(".msg.assistant", "data-id") == kept[1]["meta"]["id"]  # the start chunk's messageId


def test_stop_ends_the_reply_and_the_server_keeps_it_partial(page: Page, server: LiveServer) -> None:
    open_page(page, server, "stop", "sol", delay="30", chars="4000")
    send(page, "Long one")
    wait_for_reply_chars(page, 40)
    page.click("#stop")
    page.wait_for_selector("#chat[data-status='ready']", timeout=10000)
    shown = reply_text(page)
    page.wait_for_timeout(300)
    assert reply_text(page) == shown and len(shown) < 4000  # nothing more arrives
    deadline = 50
    while deadline and len(stored(server, "stop", "sol")) < 2:
        page.wait_for_timeout(100)
        deadline -= 1
    reply = stored(server, "stop", "sol")[1]
    assert reply["meta"]["partial"] is True and reply["content"].startswith(shown)


def test_reload_mid_reply_resumes_it(page: Page, server: LiveServer) -> None:
    open_page(page, server, "again", "rae", delay="25", chars="700", resume="1")
    send(page, "Keep going")
    wait_for_reply_chars(page, 30)
    page.reload()
    page.wait_for_selector(".msg.user", timeout=15000)
    wait_for_reply_chars(page, 30)  # the replayed reply, through GET /chat/ui/again/stream
    page.wait_for_selector("#chat[data-status='ready']", timeout=30000)
    final = reply_text(page)
    assert page.locator(".msg.assistant").count() == 1
    kept = stored(server, "again", "rae")
    assert [m["content"] for m in kept] == ["Keep going", final]
    page.reload()  # the reply is complete: its resume answers 204, the history shows it
    page.wait_for_selector("#chat[data-status='ready']", timeout=15000)
    assert page.locator(".msg").all_text_contents() == ["Keep going", final]
    assert json.loads(json.dumps(kept))[1]["meta"]["id"] == page.get_attribute(".msg.assistant", "data-id")
