"""The stream body read once into a TurnRequest: conversation, model, resume, mock knobs, messages, request id."""

from __future__ import annotations

from lean_chat.http.chat_params import mock_knobs, turn_request
from lean_chat.http.schema import ChatMessage, ChatRequest
from lean_chat.providers.base import MockKnobs
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
