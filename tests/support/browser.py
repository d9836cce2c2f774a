"""Debian's Chromium (/usr/bin/chromium, never a download) driven by Playwright: a page whose errors are noted,
and the demo page's conversation as the server keeps it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.support.services import needs

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "ask_and_wait_for_streaming",
    "chromium_page",
    "demo_user",
    "open_conversation",
    "stored_messages",
]

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


@contextlib.contextmanager
def chromium_page(problems: list[str], console_errors: bool = True, **options: Any) -> Iterator[Page]:
    """A fresh Chromium page; uncaught page errors (and console errors, unless told not to) go to `problems`."""
    needs("browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(**options)
            page.on("pageerror", lambda error: problems.append(str(error)))
            if console_errors:
                page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            yield page
        finally:
            browser.close()


def open_conversation(page: Page) -> str:
    """The id of the conversation the demo page has open ('' for a new chat not yet sent)."""
    return page.get_attribute("#log", "data-conversation-id") or ""


def stored_messages(url: str, user: str, conversation_id: str) -> list[dict[str, Any]]:
    """A conversation's messages as the server keeps them."""
    params = {"userId": user, "conversationId": conversation_id}
    answer = httpx.get(f"{url}/chat/conversation", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()["messages"]  # type: ignore[no-any-return]


def ask_and_wait_for_streaming(page: Page, prompt: str, chars: int) -> None:
    """Send `prompt` from the demo page and wait until more than `chars` of the reply are shown while it streams."""
    page.fill("#prompt", prompt)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "chars => { const r = document.querySelector('.msg.assistant');"
        " return r && r.dataset.state === 'streaming' && r.textContent.length > chars; }",
        arg=chars,
        timeout=15000,
    )


def demo_user(page: Page) -> str:
    """The demo page's user id, once its module script has set it (the input is empty until then)."""
    page.wait_for_function("() => document.querySelector('#user').value !== ''")
    return page.input_value("#user")
