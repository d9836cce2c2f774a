"""The demo page served by `lean-chat serve`, driven in headless Chromium (Debian's package, never a download)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser import (
    ask_and_wait_for_streaming,
    chromium_page,
    demo_user,
    open_conversation,
    stored_messages,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def test_a_person_types_a_message_and_watches_the_reply_stream_in(served: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    answers: list[tuple[str, int]] = []
    with chromium_page(problems, viewport={"width": 1000, "height": 1000}) as page:
        page.on("response", lambda response: answers.append((response.url, response.status)))
        page.goto(served + "/")
        assert page.title() == "lean_chat"
        # Part of the reply is on screen while the stream is still open: it streams, it does not arrive at once.
        ask_and_wait_for_streaming(page, "Hello from Chromium, grüße", 20)
        page.wait_for_selector('.msg.assistant[data-state="done"]', timeout=30000)
        reply = page.text_content(".msg.assistant") or ""
        note = page.text_content(".meta") or ""
        user = demo_user(page)
        conversation = open_conversation(page)
        page.evaluate("document.getElementById('log').scrollTop = 0")  # the question and the reply's start
        page.screenshot(path=str(ARTIFACTS / "demo-page.png"))
        # A model asked for by name without its key: the page shows the server's error frame.
        page.fill("#model", "claude-3-5-sonnet")
        page.fill("#prompt", "Are you there?")
        page.click("#send")
        page.wait_for_selector('.msg.assistant[data-state="error"]', timeout=15000)
        failure = page.text_content('.msg.assistant[data-state="error"]') or ""
        page.screenshot(path=str(ARTIFACTS / "demo-page-error.png"))
    assert problems == []
    assert (served + "/static/client.mjs", 200) in answers  # the stream client comes from the server
    assert reply.startswith("Mock reply (mock): Hello from Chromium, grüße\n\n")
    assert note.startswith("mock:gpt-4.1 · ")
    messages = stored_messages(served, user, conversation)
    assert [m["content"] for m in messages] == ["Hello from Chromium, grüße", reply, "Are you there?"]
    assert (ARTIFACTS / "demo-page.png").stat().st_size > 10_000
    assert failure == "Provider 'anthropic' is not configured (missing API key)."
