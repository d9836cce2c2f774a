"""The stream body read once into a TurnRequest: conversation, model, resume, mock knobs, messages, request id."""

from __future__ import annotations

from typing import Any

from lean_chat.http.chat_params import (
    event_kinds,
    max_steps,
    mock_knobs,
    reasoning_options,
    tool_names,
    turn_request,
)
from lean_chat.http.schema import ChatMessage, ChatRequest
from lean_chat.providers.base import MockKnobs, ReasoningOptions
from lean_chat.store.base import StoredMessage, default_conversation_id


def test_knobs_are_read_leniently_and_held_in_bounds() -> None:
    assert mock_knobs({"targetChars": "3000"}) == mock_knobs({"targetChars": 3000}) == MockKnobs(target_chars=3000)
    assert mock_knobs({"targetChars": "lots"}) == mock_knobs({}) == mock_knobs("not an object") == MockKnobs()
    assert mock_knobs({"targetChars": 2999.9}) == mock_knobs({"targetChars": 2999})
    assert mock_knobs({"targetChars": 10, "tokenDelayMs": -5, "jitterMs": 10**6}) == MockKnobs(250, True, 0, 2000)
    assert mock_knobs({"includePrefix": 0}).include_prefix is False


def test_the_request_is_resolved_once() -> None:
    message = ChatMessage("user", "hi", {"k": 1})
    params = {"conversationId": "  c1 ", "model": " gpt-4o ", "resume": True, "mock": {"jitterMs": 3}}
    asked = turn_request(ChatRequest("alice", [message], params), "r-1")
    assert (asked.user_id, asked.conversation_id, asked.model, asked.resume) == ("alice", "c1", "gpt-4o", True)
    assert asked.messages == [StoredMessage("user", "hi", {"k": 1})]
    assert asked.mock == MockKnobs(jitter_ms=3) and asked.request_id == "r-1"


def test_without_params_the_users_default_conversation_and_model() -> None:
    asked = turn_request(ChatRequest("bob", [], {"conversationId": "   ", "resume": "yes", "model": 4}), None)
    assert asked.conversation_id == default_conversation_id("bob")
    assert (asked.model, asked.resume, asked.request_id) == ("", False, None)
    assert turn_request(ChatRequest("bob", [], None), None).conversation_id == default_conversation_id("bob")


def test_the_tool_and_reasoning_params_are_held_to_types() -> None:
    params: dict[str, Any] = {"events": ["tools", "bogus", 3, "reasoning"], "tools": ["a", 1, "b"], "maxSteps": "2"}
    params["reasoning"] = {"effort": " HIGH ", "budgetTokens": 2048}
    asked = turn_request(ChatRequest("t", [], params), None)
    assert asked.events == frozenset({"tools", "reasoning"}) and asked.tools == ("a", "b") and asked.max_steps == 2
    assert asked.reasoning == ReasoningOptions("high", 2048)
    loose = turn_request(ChatRequest("t", [], {"events": "tools", "tools": "a", "maxSteps": 0, "reasoning": {}}), None)
    assert (loose.events, loose.tools, loose.max_steps, loose.reasoning) == (frozenset(), None, None, None)
    assert event_kinds([]) == frozenset() and tool_names([]) == ()
    assert max_steps(True) is None and max_steps(3.7) == 3 and max_steps(-1) is None
    assert reasoning_options({"effort": "extreme"}) is None
    assert reasoning_options({"budgetTokens": "512"}) == ReasoningOptions(None, 512)
