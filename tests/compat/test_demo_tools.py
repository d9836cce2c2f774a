"""The demo page with tools: the mock reasons and calls the example tool (`--demo-tools`), shown in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import chromium_page, demo_user, open_conversation, stored_messages
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def served_with_tools(tmp_path: Path) -> Iterator[str]:
    """`python -m lean_chat serve --demo-tools`: the demo page and its example tool, SQLite history, the mock."""
    with ServerProcess(str(tmp_path / "chat.sqlite3"), args=("--demo-tools",)) as server:
        yield server.url


def test_reasoning_is_collapsed_and_each_tool_call_shows_its_arguments_and_result(served_with_tools: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with chromium_page(problems, viewport={"width": 1000, "height": 900}) as page:
        page.goto(served_with_tools + "/")
        page.check("#tools-demo")
        page.fill("#prompt", "What is the weather in Lisbon?")
        page.keyboard.press("Enter")
        page.wait_for_selector('.msg.assistant[data-state="done"]', timeout=30000)
        details = page.locator(".msg.assistant details.reasoning")
        assert details.count() == 1 and details.get_attribute("open") is None  # collapsed
        thought = page.text_content(".msg.assistant .thought") or ""
        assert not page.is_visible(".msg.assistant .thought")
        page.click(".msg.assistant details.reasoning summary")
        assert page.is_visible(".msg.assistant .thought")
        tool = page.locator(".msg.assistant .tool")
        assert tool.count() == 1 and tool.get_attribute("data-state") == "done"
        name = page.text_content(".tool .tool-name")
        args = page.text_content(".tool .tool-args")
        result = page.text_content(".tool .tool-result") or ""
        text = page.text_content(".msg.assistant .text") or ""
        page.screenshot(path=str(ARTIFACTS / "demo-page-tools.png"))
        user, conversation = demo_user(page), open_conversation(page)
        # Reloaded, the conversation is drawn from its stored parts the same way.
        page.reload()
        page.wait_for_selector(".msg.assistant .tool[data-state='done']", timeout=15000)
        reloaded = page.text_content(".tool .tool-result")
        reloaded_thought = page.text_content(".msg.assistant .thought")
    assert problems == []
    assert thought.startswith('The user asks: "What is the weather in Lisbon?"')
    assert name == "tool get_weather" and args == '{"city":"Lisbon"}'
    assert result.startswith('{"city":"Lisbon","temperature":') and '"sky":' in result
    assert text.startswith("Tool get_weather returned " + result + ".")
    assert reloaded == result and reloaded_thought == thought
    stored = stored_messages(served_with_tools, user, conversation)[-1]
    assert stored["content"] == text
    assert [p["type"] for p in stored["meta"]["parts"]] == ["reasoning", "tool_call", "tool_result", "text"]
