"""History as UIMessages, and what a request adds or replaces (http/ui_messages.py)."""

from __future__ import annotations

from typing import Any

from lean_chat.http.ui_messages import plan_turn, ui_messages
from lean_chat.http.ui_schema import UIAsk, UIIncoming
from lean_chat.store.base import StoredMessage


def test_a_reply_with_parts_becomes_steps_reasoning_text_and_tool_parts_without_state() -> None:
    parts: list[dict[str, Any]] = [
        {"type": "reasoning", "text": "hm", "state": {"provider": "anthropic", "model": "m", "data": {"s": "x"}}},
        {"type": "tool_call", "id": "c0", "name": "get_weather", "args": {"city": "Oslo"}},
        {"type": "tool_call", "id": "c1", "name": "nope", "args": {}},
        {"type": "tool_result", "id": "c0", "name": "get_weather", "output": {"t": 3}, "isError": False},
        {
            "type": "tool_result",
            "id": "c1",
            "name": "nope",
            "error": {"code": "unknown_tool", "message": "no"},
            "isError": True,
        },
        {"type": "text", "text": "Done."},
    ]
    reply = StoredMessage("assistant", "Done.", {"id": "r1", "parts": parts, "partial": True})
    (ui,) = ui_messages([reply], 3)
    assert ui["id"] == "r1" and ui["metadata"] == {"partial": True}
    assert ui["parts"] == [
        {"type": "step-start"},
        {"type": "reasoning", "text": "hm"},
        {
            "type": "tool-get_weather",
            "toolCallId": "c0",
            "input": {"city": "Oslo"},
            "state": "output-available",
            "output": {"t": 3},
        },
        {"type": "tool-nope", "toolCallId": "c1", "input": {}, "state": "output-error", "errorText": "no"},
        {"type": "step-start"},
        {"type": "text", "text": "Done."},
    ]
    assert "anthropic" not in repr(ui)


def test_messages_without_an_id_are_named_by_position() -> None:
    found = ui_messages([StoredMessage("user", "a"), StoredMessage("assistant", "b", {"metadata": {"x": 1}})], 4)
    assert [(m["id"], m["parts"], m.get("metadata")) for m in found] == [
        ("lc-4", [{"type": "text", "text": "a"}], None),
        ("lc-5", [{"type": "text", "text": "b"}], {"x": 1}),
    ]


def ask(trigger: str, *ids: str, message_id: str | None = None) -> UIAsk:
    """A request with user messages of these ids."""
    return UIAsk("c", [UIIncoming(i, "user", i.upper(), None) for i in ids], trigger, message_id, None, {})


STORED = [
    StoredMessage("user", "A", {"id": "a"}),
    StoredMessage("assistant", "x", {"id": "r1"}),
    StoredMessage("user", "B", {"id": "b"}),
    StoredMessage("assistant", "y", {"id": "r2"}),
]


def test_new_messages_are_the_ones_not_stored_each_once() -> None:
    plan = plan_turn(STORED, ask("submit-message", "a", "b", "c", "c"))
    assert plan.keep is None and [m.meta for m in plan.new] == [{"id": "c"}]
    assert plan.incoming(STORED) == [*STORED, *plan.new]


def test_regenerate_drops_the_named_reply_or_the_last_one() -> None:
    assert plan_turn(STORED, ask("regenerate-message", "a", "b")).keep == 3
    assert plan_turn(STORED, ask("regenerate-message", "a", message_id="r1")).keep == 1
    assert plan_turn(STORED, ask("regenerate-message", "a", message_id="a")).keep == 1  # a user message: after it
    assert plan_turn(STORED, ask("regenerate-message", message_id="unknown")).keep is None
    assert plan_turn(STORED[:3], ask("regenerate-message", "a", "b")).keep is None  # the last is no reply


def test_an_edit_replaces_the_message_and_what_followed() -> None:
    plan = plan_turn(STORED, ask("submit-message", "a", "b", message_id="b"))
    assert plan.keep == 2 and [m.content for m in plan.new] == ["B"]
    assert plan_turn(STORED, ask("submit-message", "a", message_id="r1")).keep is None  # not a user message
