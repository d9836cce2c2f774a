"""Tool arguments and tool calls, generated: never a 500, never a traceback, every call answered exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lean_chat import create_app
from lean_chat.providers.base import StreamCall
from lean_chat.providers.events import ProviderEvent, StepEnd, ToolCall
from lean_chat.store.base import StoredMessage
from lean_chat.store.memory import MemoryStore
from lean_chat.tools import ToolRegistry
from lean_chat.turn.chat import ChatService
from lean_chat.turn.events import ToolCallEvent, ToolResultEvent
from lean_chat.turn.outcomes import Done
from lean_chat.turn.turn_request import TurnRequest
from tests.support.apps import asgi_client
from tests.support.frames import check_grammar, parse_frames
from tests.support.tools import add, explode, get_weather, tool_body

TOOLS: list[Callable[..., Any]] = [get_weather, add, explode]
# Client text as the request schema takes it (a U+0000 or a lone surrogate is a 422 before any tool runs).
texts = st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
arg_objects = st.one_of(
    json_values,
    st.fixed_dictionaries({"city": json_values}),
    st.fixed_dictionaries({"a": json_values, "b": json_values}),
    st.fixed_dictionaries({"a": st.integers(), "b": st.integers()}),
)
names = st.one_of(st.sampled_from(["get_weather", "add", "explode"]), texts)
calls = st.lists(st.fixed_dictionaries({"name": names, "args": arg_objects}), max_size=6)
event_lists = st.sampled_from([None, [], ["tools"], ["reasoning", "tools"], ["reasoning"]])

APP = create_app(sqlite_path="", tools=TOOLS, max_tool_calls_per_step=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=calls, events=event_lists)
def test_generated_tool_calls_through_the_mock_never_fail_the_turn(calls: list[dict[str, Any]], events: Any) -> None:
    async def run() -> None:
        async with APP.router.lifespan_context(APP), asgi_client(APP) as http:
            response = await http.post("/chat/stream", json=tool_body("fuzz", "go", calls, events))
        assert response.status_code == 200
        assert b"Traceback" not in response.content
        frames = parse_frames(response.content)
        done = check_grammar(frames, opted_in=bool(events))
        assert done.event == "done"
        if events and "tools" in events:
            call_ids = [f.data["id"] for f in frames if f.event == "tool_call"]
            result_ids = [f.data["id"] for f in frames if f.event == "tool_result"]
            assert sorted(call_ids) == sorted(result_ids) and len(set(call_ids)) == len(call_ids) == len(calls)
        if calls:
            assert done.data["message"]["content"].count("Tool ") >= len(calls)

    asyncio.run(run())


class FragmentProvider:
    """A provider that yields generated tool calls (any id, any name, any argument text) and then stops."""

    name = "openai"

    def __init__(self, yielded: list[ToolCall]) -> None:
        self.yielded = yielded

    async def stream(self, call: StreamCall) -> AsyncGenerator[list[str] | ProviderEvent, None]:
        """Step 0: the calls; later steps: a word."""
        if call.step == 0:
            yield ["thinking"]
            for item in self.yielded:
                yield item
            yield StepEnd("tool-calls")
        else:
            yield ["done"]


raw_calls = st.lists(
    st.builds(
        ToolCall,
        id=st.sampled_from(["", "call_0", "call_1", "x"]) | st.text(max_size=6),
        name=names,
        args_json=st.one_of(
            st.text(max_size=30),
            json_values.map(json.dumps),
            st.sampled_from(['{"city": "Par', '{"a": 1, "b":', "", "  ", "null", "[]", '{"a":1,"b":2}']),
        ),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(yielded=raw_calls)
def test_generated_provider_tool_calls_get_unique_ids_and_one_result_each(yielded: list[ToolCall]) -> None:
    async def run() -> None:
        service = ChatService(MemoryStore(), {"openai": FragmentProvider(yielded)}, tools=ToolRegistry(TOOLS))
        asked = TurnRequest(
            "u", "default:u", [StoredMessage("user", "hi")], model="gpt-4.1", events=frozenset({"tools"})
        )
        turn = await service.open_turn(asked)
        seen_calls: list[str] = []
        seen_results: list[str] = []
        async for item in turn.events():
            if isinstance(item, ToolCallEvent):
                seen_calls.append(item.id)
            elif isinstance(item, ToolResultEvent):
                seen_results.append(item.id)
        outcome = await turn.finish()
        assert isinstance(outcome, Done)
        assert len(seen_calls) == len(yielded) == len(set(seen_calls)) and all(seen_calls)
        assert sorted(seen_results) == sorted(seen_calls)
        assert outcome.content == ("thinkingdone" if yielded else "thinking")
        stored = (await service.store.history("u"))[-1]
        if yielded:
            assert stored.meta is not None
            kinds = [p["type"] for p in stored.meta["parts"]]
            assert kinds.count("tool_call") == kinds.count("tool_result") == len(yielded)

    asyncio.run(run())
