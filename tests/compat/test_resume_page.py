"""Stop and resume in Chromium: the demo page's Stop button, and a native EventSource through a proxy that cuts the
connection (Debian's /usr/bin/chromium driven by Playwright, never a download). The demo page's resume after a
reload is in test_demo_conversations.py."""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page

from lean_chat import create_app
from tests.resume.reading import body, read
from tests.support.browser import chromium_page, demo_user, open_conversation, stored_messages
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


def test_the_demo_pages_stop_button_ends_the_reply(served: str, page: Page) -> None:
    page.goto(served + "/")
    page.fill("#prompt", "Please stop me")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => { const r = document.querySelector('.msg.assistant'); return r && r.textContent.length > 30; }",
        timeout=15000,
    )
    page.click("#stop")
    page.wait_for_selector('.msg.assistant[data-state="stopped"]', timeout=10000)
    reply = page.text_content(".msg.assistant") or ""
    assert "stopped" in (page.text_content(".meta") or "")
    saved = stored_messages(served, demo_user(page), open_conversation(page))[-1]
    assert saved == {"role": "assistant", "content": reply, "meta": {"partial": True, "stopped": True}}
    assert 30 < len(reply) < 1200


class CuttingProxy:
    """A TCP proxy on loopback that can cut every connection through it at once; it notes what clients sent."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.sent: list[bytes] = []
        self.cuts = 0

    def __enter__(self) -> CuttingProxy:
        self.thread.start()
        start = asyncio.start_server(self._client, "127.0.0.1", 0)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _shutdown(self) -> None:
        """Close the listener and every connection, and wait for their tasks (nothing left for the collector)."""
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.add(writer)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers.add(upstream_writer)

        async def pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter, note: bool) -> None:
            try:
                while data := await source.read(65536):
                    if note:
                        self.sent.append(data)
                    target.write(data)
                    await target.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                target.close()

        try:
            await asyncio.gather(pipe(reader, upstream_writer, True), pipe(upstream_reader, writer, False))
        finally:
            for end in (writer, upstream_writer):
                end.transport.abort()
                self.writers.discard(end)
            self.tasks.discard(task)

    def cut(self) -> None:
        """Cut every open connection (as a phone losing signal)."""

        def cut_all() -> None:
            self.cuts += 1
            for writer in list(self.writers):
                writer.transport.abort()
            self.writers.clear()

        self.loop.call_soon_threadsafe(cut_all)


EVENT_SOURCE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>es</title></head><body><script>
window.result = {tokens: [], opens: 0, done: null, failed: null};
const source = new EventSource(new URLSearchParams(location.search).get("url"));
source.onopen = () => { result.opens += 1; };
source.addEventListener("token", (e) => { result.tokens.push(JSON.parse(e.data).token); });
source.addEventListener("done", (e) => { result.done = JSON.parse(e.data); source.close(); });
source.addEventListener("error", (e) => { if (e.data) { result.failed = JSON.parse(e.data); source.close(); } });
</script></body></html>"""


def test_native_event_source_survives_a_connection_cut() -> None:
    problems: list[str] = []  # page errors only: the cut connections are console errors, as they should be
    with (
        chromium_page(problems, console_errors=False) as page,
        LiveServer(create_app(sqlite_path="", heartbeat_seconds=1.0)) as lean,
        CuttingProxy(lean.port) as proxy,
        httpx.Client(base_url=lean.url, timeout=20) as http,
    ):
        started = read(http, "POST", "/chat/stream", json=body("es", targetChars=2500, tokenDelayMs=12), stop_after=1)
        assert started.stream_id is not None
        resume_url = f"{proxy.url}/chat/stream/{started.stream_id}?userId=es"
        page.route(
            lambda url: "/es.html" in url,
            lambda route: route.fulfill(body=EVENT_SOURCE_PAGE, content_type="text/html"),
        )
        page.goto(f"{proxy.url}/es.html?url={quote(resume_url, safe='')}")
        page.wait_for_function("() => result.tokens.length > 30", timeout=15000)
        proxy.cut()
        page.wait_for_function("() => result.done !== null || result.failed !== null", timeout=30000)
        result = page.evaluate("result")
    assert problems == []
    assert result["failed"] is None
    assert result["opens"] >= 2, "EventSource reconnected by itself"
    assert "".join(result["tokens"]) == result["done"]["message"]["content"], "each token once, none lost"
    reconnects = [chunk for chunk in proxy.sent if b"\r\nlast-event-id: " in chunk.lower()]
    assert reconnects, "the reconnect carried Last-Event-ID"
    assert json.dumps(result["done"])  # a plain object
