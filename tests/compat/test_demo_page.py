"""The demo page served by `lean-chat serve`, driven in headless Chromium (Debian's package, never a download)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.support.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def served() -> Iterator[str]:
    """`python -m lean_chat serve` on a free port, history in memory, no provider keys (the mock answers)."""
    with ServerProcess("", args=()) as server:
        yield server.url


def test_a_person_types_a_message_and_watches_the_reply_stream_in(served: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1000})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            answers: list[tuple[str, int]] = []
            page.on("response", lambda response: answers.append((response.url, response.status)))
            page.goto(served + "/")
            assert page.title() == "lean_chat"
            page.fill("#prompt", "Hello from Chromium, grüße")
            page.keyboard.press("Enter")
            # Part of the reply is on screen while the stream is still open: it streams, it does not arrive at once.
            page.wait_for_function(
                "() => { const r = document.querySelector('.msg.assistant');"
                " return r && r.dataset.state === 'streaming' && r.textContent.length > 20; }",
                timeout=15000,
            )
            page.wait_for_selector('.msg.assistant[data-state="done"]', timeout=30000)
            reply = page.text_content(".msg.assistant") or ""
            note = page.text_content(".meta") or ""
            user = page.input_value("#user")
            page.evaluate("document.getElementById('log').scrollTop = 0")  # the question and the reply's start
            page.screenshot(path=str(ARTIFACTS / "demo-page.png"))
            # A model asked for by name without its key: the page shows the server's error frame.
            page.fill("#model", "claude-3-5-sonnet")
            page.fill("#prompt", "Are you there?")
            page.click("#send")
            page.wait_for_selector('.msg.assistant[data-state="error"]', timeout=15000)
            failure = page.text_content('.msg.assistant[data-state="error"]') or ""
            page.screenshot(path=str(ARTIFACTS / "demo-page-error.png"))
        finally:
            browser.close()
    assert problems == []
    assert (served + "/static/client.mjs", 200) in answers  # the stream client comes from the server
    assert reply.startswith("Mock reply (mock): Hello from Chromium, grüße\n\n")
    assert note.startswith("mock:gpt-4.1 · ")
    history = httpx.get(f"{served}/chat/history", params={"userId": user}, timeout=10).json()
    assert [m["content"] for m in history["messages"]] == ["Hello from Chromium, grüße", reply, "Are you there?"]
    assert (ARTIFACTS / "demo-page.png").stat().st_size > 10_000
    assert failure == "Provider 'anthropic' is not configured (missing API key)."
