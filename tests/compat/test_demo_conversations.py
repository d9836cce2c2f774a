"""The demo page remembers: the user's conversations listed, opened, switched, and a reply in progress resumed
after a reload (its row's `activeStreamId`), in Chromium against `lean-chat serve` with SQLite history."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route

from tests.support.browser import ask_and_wait_for_streaming, demo_user, open_conversation, stored_messages

pytestmark = pytest.mark.browser

# Text that would become markup, or run, if the page ever put it into innerHTML.
HOSTILE = [
    '<img src=x onerror="window.pwned = 1">',
    "<script>window.pwned = 2</script>",
    '"><b id="bold">bold</b><!--',
    "&lt;entity&gt; &amp; </li></ul><i>italic",
]


def mock_replies(page: Page, **mock: Any) -> None:
    """The page's chat POSTs ask the mock for `mock` (`tokenDelayMs`, `targetChars`): the page itself sends none."""

    def with_mock(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        body = json.loads(route.request.post_data or "{}")
        body["params"]["mock"] = mock
        route.continue_(post_data=json.dumps(body))

    page.route("**/chat/stream", with_mock)


def send(page: Page, text: str) -> None:
    """Type a message, send it, wait for the reply's `done`."""
    done = page.locator('.msg.assistant[data-state="done"]').count()
    page.fill("#prompt", text)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.msg.assistant[data-state=\"done\"]').length === n", arg=done + 1
    )


def shown(page: Page) -> list[list[str]]:
    """The log's messages as [role, text]."""
    return page.eval_on_selector_all("#log .msg", "nodes => nodes.map(n => [n.classList[1], n.textContent])")  # type: ignore[no-any-return]


def wait_for_log(page: Page, messages: list[dict[str, Any]]) -> None:
    """Wait until the log shows exactly these stored messages, in order."""
    expected = [[m["role"], m["content"]] for m in messages]
    page.wait_for_function(
        "expected => JSON.stringify([...document.querySelectorAll('#log .msg')]"
        ".map(n => [n.classList[1], n.textContent])) === JSON.stringify(expected)",
        arg=expected,
        timeout=15000,
    )


def listed(page: Page) -> list[str]:
    """The titles in the conversation list, top to bottom."""
    return page.eval_on_selector_all("#conversations .title", "nodes => nodes.map(n => n.textContent)")  # type: ignore[no-any-return]


def rows(url: str, user: str) -> list[dict[str, Any]]:
    """The user's conversation rows as the server lists them."""
    answer = httpx.get(f"{url}/chat/conversations", params={"userId": user}, timeout=10)
    return answer.json()["conversations"]  # type: ignore[no-any-return]


def test_a_reload_shows_the_open_conversation_and_its_messages_for_the_same_user(served: str, page: Page) -> None:
    mock_replies(page, targetChars=250, tokenDelayMs=1)
    page.goto(served + "/")
    user = demo_user(page)
    send(page, "What is a lean chat?")
    send(page, "And a second question")
    conversation = open_conversation(page)
    before = shown(page)
    page.reload()
    stored = stored_messages(served, user, conversation)
    wait_for_log(page, stored)
    assert page.input_value("#user") == user and page.evaluate("localStorage.getItem('lean_chat.user')") == user
    assert open_conversation(page) == conversation
    assert listed(page) == ["What is a lean chat?"]
    assert page.get_attribute("#conversations button[aria-current='true']", "data-conversation-id") == conversation
    assert shown(page) == before
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]


def test_a_reload_mid_reply_resumes_the_active_stream_to_the_stored_reply(served: str, page: Page) -> None:
    mock_replies(page, targetChars=1200, tokenDelayMs=25)
    page.goto(served + "/")
    user = demo_user(page)
    ask_and_wait_for_streaming(page, "Keep going while I reload", 40)
    conversation = open_conversation(page)
    page.reload()
    # The row names the stream still running, and the page follows it from its first token again.
    resumed = page.wait_for_selector('.msg.assistant[data-resumed="true"][data-state="streaming"]', timeout=10000)
    assert resumed is not None
    [row] = rows(served, user)
    assert row["conversationId"] == conversation and row["activeStreamId"] is not None
    assert page.is_visible("#stop") and page.is_disabled("#send")
    assert page.get_attribute("#conversations li", "class") == "active"
    page.wait_for_selector('.msg.assistant[data-state="done"]', timeout=30000)
    reply = page.text_content(".msg.assistant") or ""
    stored = stored_messages(served, user, conversation)
    assert [m["role"] for m in stored] == ["user", "assistant"], "one turn: the reload asked nothing again"
    assert reply == stored[1]["content"] and stored[1]["meta"] is None
    assert reply.startswith("Mock reply (mock): Keep going while I reload") and len(reply) >= 1200
    assert (page.text_content(".meta") or "").startswith("mock:gpt-4.1 · ")
    assert page.is_hidden("#stop") and page.is_enabled("#send")
    page.wait_for_function("() => document.querySelector('#conversations li').className === ''")
    # Reloaded again once the reply is over: the conversation as stored, nothing resumed.
    page.reload()
    wait_for_log(page, stored)
    assert page.query_selector("[data-resumed]") is None


def test_switching_conversations_shows_each_ones_messages(served: str, page: Page) -> None:
    mock_replies(page, targetChars=250, tokenDelayMs=1)
    page.goto(served + "/")
    user = demo_user(page)
    send(page, "Alpha question")
    alpha = open_conversation(page)
    page.click("#new-chat")
    assert open_conversation(page) == "" and shown(page) == []
    send(page, "Beta question")
    beta = open_conversation(page)
    assert alpha != beta
    page.wait_for_function("() => document.querySelectorAll('#conversations .title').length === 2")
    assert listed(page) == ["Beta question", "Alpha question"], "newest first"
    alpha_messages = stored_messages(served, user, alpha)
    beta_messages = stored_messages(served, user, beta)
    assert alpha_messages[0]["content"] == "Alpha question" and beta_messages[0]["content"] == "Beta question"
    for conversation, messages in [(alpha, alpha_messages), (beta, beta_messages), (alpha, alpha_messages)]:
        page.click(f"#conversations button[data-conversation-id='{conversation}']")
        wait_for_log(page, messages)
        assert open_conversation(page) == conversation
        current = page.eval_on_selector_all(
            "#conversations button[aria-current='true']", "nodes => nodes.map(n => n.dataset.conversationId)"
        )
        assert current == [conversation]


def test_coming_back_to_a_conversation_mid_reply_resumes_it(served: str, page: Page) -> None:
    mock_replies(page, targetChars=1200, tokenDelayMs=25)
    page.goto(served + "/")
    user = demo_user(page)
    ask_and_wait_for_streaming(page, "Carry on without me", 40)
    conversation = open_conversation(page)
    page.click("#new-chat")
    assert shown(page) == [] and page.is_enabled("#send") and page.is_hidden("#stop")
    page.click(f"#conversations button[data-conversation-id='{conversation}']")
    page.wait_for_selector('.msg.assistant[data-resumed="true"][data-state="streaming"]', timeout=10000)
    page.wait_for_selector('.msg.assistant[data-state="done"]', timeout=30000)
    stored = stored_messages(served, user, conversation)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert shown(page) == [["user", "Carry on without me"], ["assistant", stored[1]["content"]]]
    assert stored[1]["meta"] is None, "the reply went on, whole, while another chat was open"


def test_hostile_titles_and_messages_render_as_text(served: str, page: Page) -> None:
    user = "hostile-user"
    with httpx.Client(base_url=served, timeout=10) as http:
        for title in HOSTILE:
            http.post("/chat/conversation/create", json={"userId": user, "title": title}).raise_for_status()
        message = HOSTILE[0] + " " + HOSTILE[1]
        params = {"conversationId": "hostile-talk", "mock": {"targetChars": 250, "tokenDelayMs": 0}}
        turn = {"userId": user, "messages": [{"role": "user", "content": message}], "params": params}
        answer = http.post("/chat/stream", json=turn)
        assert answer.status_code == 200 and "event: done" in answer.text
    listing = rows(served, user)
    page.add_init_script(
        f"localStorage.setItem('lean_chat.user', {json.dumps(user)});"
        " localStorage.setItem('lean_chat.open', 'hostile-talk');"
    )
    page.goto(served + "/")
    stored = stored_messages(served, user, "hostile-talk")
    wait_for_log(page, stored)
    assert listed(page) == [row["title"] for row in listing]
    assert sorted(listed(page)) == sorted([*HOSTILE, message[:60] + "…"])
    assert stored[0]["content"] == message and message in stored[1]["content"]
    # Nothing but the page's own elements: no image, script, bold or italic made from the text, and nothing ran.
    made = page.eval_on_selector_all("#conversations *, #log *", "nodes => [...new Set(nodes.map(n => n.tagName))]")
    assert sorted(made) == ["BUTTON", "DIV", "LI", "SPAN"]
    assert page.evaluate("window.pwned") is None
    assert page.query_selector("#bold") is None
