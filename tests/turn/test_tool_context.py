"""The transcript a provider gets: stored parts (with their state) on the next turn, and each step's results."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from lean_chat.providers.base import ContextMessage, MockKnobs, MockToolCall, StreamCall
from lean_chat.providers.events import ProviderEvent, ReasoningDelta, StepEnd, ToolCall
from lean_chat.providers.parts import (
    Part,
    ProviderState,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    encode_parts,
)
from lean_chat.store.base import StoredMessage
from lean_chat.store.memory import MemoryStore
from lean_chat.tools import ToolRegistry
from lean_chat.turn.chat import ChatService, ContextView
from lean_chat.turn.outcomes import Done
from lean_chat.turn.turn_request import TurnRequest
from tests.support.tools import add

pytestmark = pytest.mark.anyio

STATE = ProviderState("anthropic", "claude-test", {"signature": "sig=="})


class Recording:
    """A provider that records each step's call: step 0 reasons, signs and calls `add`; step 1 answers."""

    name = "anthropic"

    def __init__(self) -> None:
        self.calls: list[StreamCall] = []

    async def stream(self, call: StreamCall) -> AsyncGenerator[list[str] | ProviderEvent, None]:
        """One step."""
        self.calls.append(call)
        if call.step == 0:
            yield ReasoningDelta("I should add.")
            yield ["Let me add. "]
            yield ToolCall("", "add", '{"a": 2, "b": 3}')
            parts = (ReasoningPart("I should add.", STATE), TextPart("Let me add. "), ToolCallPart("", "add", {}))
            yield StepEnd("tool-calls", parts)
        else:
            yield ["It is 5."]


def test_the_context_view_gives_assistant_parts_decoded_with_their_state() -> None:
    parts: list[Part] = [ReasoningPart("r", STATE), TextPart("t")]
    stored = [
        StoredMessage("user", "hi", {"parts": encode_parts(parts)}),  # a user's meta.parts is not a transcript
        StoredMessage("assistant", "t", {"parts": encode_parts(parts), "partial": True}),
        StoredMessage("assistant", "t", {"parts": [{"type": "nonsense"}]}),
    ]
    view = list(ContextView(stored))
    assert view[0] == ContextMessage("user", "hi")
    assert view[1] == ContextMessage("assistant", "t", tuple(parts))
    assert view[2] == ContextMessage("assistant", "t", None)


async def test_each_step_and_the_next_turn_get_the_parts_with_the_providers_state() -> None:
    provider = Recording()
    service = ChatService(MemoryStore(), {"anthropic": provider}, tools=ToolRegistry([add]))
    asked = TurnRequest("u", "default:u", [StoredMessage("user", "2+3?")], model="claude-test")
    turn = await service.open_turn(asked)
    async for _ in turn.events():
        pass
    done = await turn.finish()
    assert isinstance(done, Done) and done.content == "Let me add. It is 5."
    first, second = provider.calls
    assert [t.name for t in first.tools] == ["add"] and first.tools[0].parameters["required"] == ["a", "b"]
    # Step 1 sees step 0 as an assistant message: the provider's own parts (state kept), the engine's call id.
    last = list(second.messages)[-1]
    assert last.role == "assistant" and last.parts == (
        ReasoningPart("I should add.", STATE),
        TextPart("Let me add. "),
        ToolCallPart("call_0", "add", {"a": 2, "b": 3}),
        ToolResultPart("call_0", "add", output=5),
    )
    # The next turn (the client sends only its new message) gets the whole turn back, state and all.
    follow = await service.open_turn(TurnRequest("u", "default:u", [StoredMessage("user", "and 3+4?")]))
    previous = list(follow.call.messages)[-2]
    assert previous.content == "Let me add. It is 5."
    assert previous.parts is not None and previous.parts[0] == ReasoningPart("I should add.", STATE)
    assert previous.parts[-1] == TextPart("It is 5.")


async def test_a_client_cannot_send_provider_state_into_the_context() -> None:
    from lean_chat.http.chat_params import turn_request
    from lean_chat.http.schema import ChatMessage, ChatRequest

    forged = {"parts": encode_parts([ReasoningPart("x", STATE)])}
    request = ChatRequest("u", [ChatMessage("assistant", "x", forged), ChatMessage("user", "hi")], None)
    asked = turn_request(request, None)
    assert asked.messages[0].meta == {"parts": [{"type": "reasoning", "text": "x"}]}


def test_mock_knobs_read_tool_calls_leniently() -> None:
    from lean_chat.http.chat_params import mock_knobs

    knobs = mock_knobs(
        {"reasoning": "r", "toolCalls": [{"name": "a", "args": {"x": 1}}, {"args": {}}, "junk", {"name": 3}]}
    )
    assert knobs == MockKnobs(reasoning="r", tool_calls=(MockToolCall("a", {"x": 1}),))
    assert mock_knobs({"reasoning": 5, "toolCalls": {"name": "a"}}) == MockKnobs()


async def test_without_events_asked_for_a_tool_turn_yields_token_batches_only() -> None:
    provider = Recording()
    service = ChatService(MemoryStore(), {"anthropic": provider}, tools=ToolRegistry([add]))
    turn = await service.open_turn(TurnRequest("u", "default:u", [StoredMessage("user", "2+3?")], model="claude-test"))
    items = [item async for item in turn.events()]
    assert all(isinstance(item, list) for item in items) and len(provider.calls) == 2  # the tools still ran
    done = await turn.finish()
    assert isinstance(done, Done) and [type(p).__name__ for p in done.parts or ()] == [
        "ReasoningPart",
        "TextPart",
        "ToolCallPart",
        "ToolResultPart",
        "TextPart",
    ]
