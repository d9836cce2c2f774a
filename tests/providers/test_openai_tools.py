"""OpenAI tool calls and reasoning: fragments gathered by index or id, faults, the transcript sent back, the knobs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from lean_chat.providers.base import ContextMessage, ProviderError, ReasoningOptions
from lean_chat.providers.parts import ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from tests.support.provider_steps import WEATHER, Streamed, stream_step
from tests.support.upstreams import Call, FakeOpenAI, Reply

pytestmark = pytest.mark.anyio

MODEL = "gpt-4.1"
PARIS = {"city": "Paris"}


@pytest.mark.parametrize("index", ["normal", "missing", "reused"])
async def test_parallel_calls_are_gathered_by_index_or_by_id(index: str) -> None:
    calls = [Call("get_weather", PARIS, pieces=4), Call("get_time", {"zone": "Europe/Paris"}, pieces=3)]
    step = await stream_step(FakeOpenAI(), Reply(tokens=["Let me look."], calls=calls, call_index=index), model=MODEL)
    assert step.text == "Let me look."
    assert [(c.id, c.name, c.args_json) for c in step.calls] == [
        ("call_1_0", "get_weather", '{"city":"Paris"}'),
        ("call_1_1", "get_time", '{"zone":"Europe/Paris"}'),
    ]
    assert step.kinds() == ["text", "call", "call", "end"]
    assert step.end.finish_reason == "tool-calls" and step.end.parts is None


async def test_a_call_without_an_id_gets_one() -> None:
    calls = [Call("get_weather", PARIS, id=None), Call("get_weather", {"city": "Oslo"}, id=None)]
    step = await stream_step(FakeOpenAI(), Reply(tokens=[], calls=calls), model=MODEL)
    ids = [c.id for c in step.calls]
    assert all(i.startswith("call_") and len(i) > 10 for i in ids) and len(set(ids)) == 2
    assert [c.args_json for c in step.calls] == ['{"city":"Paris"}', '{"city":"Oslo"}']


async def test_a_call_without_an_id_nor_index_starts_at_its_name() -> None:
    calls = [Call("a", {"x": 1}, id=None), Call("b", {"y": 2}, id=None)]
    step = await stream_step(FakeOpenAI(), Reply(tokens=[], calls=calls, call_index="missing"), model=MODEL)
    assert [(c.name, c.args_json) for c in step.calls] == [("a", '{"x":1}'), ("b", '{"y":2}')]


async def test_arguments_cut_mid_json_reach_the_engine_as_they_are() -> None:
    step = await stream_step(FakeOpenAI(), Reply(tokens=[], calls=[Call("get_weather", '{"city": "Par')]), model=MODEL)
    assert [(c.name, c.args_json) for c in step.calls] == [("get_weather", '{"city": "Par')]


async def test_a_call_cut_by_the_token_limit_is_no_call() -> None:
    calls = [Call("get_weather", PARIS), Call("get_weather", '{"city": "Os')]
    step = await stream_step(FakeOpenAI(), Reply(tokens=[], calls=calls, finish_reason="length"), model=MODEL)
    assert [c.args_json for c in step.calls] == ['{"city":"Paris"}']
    assert step.end.finish_reason == "length"


async def test_an_unknown_tool_name_is_passed_on() -> None:
    step = await stream_step(FakeOpenAI(), Reply(tokens=[], calls=[Call("rm_rf", {})]), model=MODEL)
    assert [(c.name, c.args_json) for c in step.calls] == [("rm_rf", "{}")]


@pytest.mark.parametrize("fault", [{"end_after": 2}, {"drop_after": 2}], ids=["ends", "drops"])
async def test_a_stream_that_ends_mid_call_fails_without_a_call(fault: dict[str, Any]) -> None:
    fake = FakeOpenAI(Reply(tokens=["a"], calls=[Call("get_weather", PARIS, pieces=4)], **fault))
    streamed = Streamed()
    with pytest.raises(ProviderError):
        await stream_step(fake, model=MODEL, into=streamed, openai_max_retries=0)
    assert streamed.text == "a" and streamed.calls == []


async def test_a_server_that_ends_tool_calls_with_stop() -> None:
    step = await stream_step(
        FakeOpenAI(), Reply(tokens=[], calls=[Call("get_weather", PARIS)], finish_reason="stop"), model=MODEL
    )
    assert len(step.calls) == 1 and step.end.finish_reason == "tool-calls"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_deltas_come_before_the_text(field: str) -> None:
    reply = Reply(tokens=["Hi", "!"], reasoning=["Think", "ing."], reasoning_field=field)
    step = await stream_step(FakeOpenAI(), reply, model=MODEL)
    assert step.reasoning == "Thinking." and step.text == "Hi!"
    assert step.kinds() == ["reasoning", "text", "end"]
    assert step.end.finish_reason == "stop"


async def test_plain_text_ends_its_step_with_stop_and_no_parts() -> None:
    step = await stream_step(FakeOpenAI(), Reply(tokens=["a", "b"]), model=MODEL, tools=())
    assert step.kinds() == ["text", "end"] and step.end.parts is None
    assert step.text == "ab"


async def test_tools_and_reasoning_effort_in_the_request() -> None:
    fake = FakeOpenAI()
    await stream_step(fake, model="o4-mini", reasoning=ReasoningOptions(effort="high"))
    body = fake.received[-1].body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": WEATHER.description, "parameters": WEATHER.parameters},
        }
    ]
    assert body["reasoning_effort"] == "high"
    await stream_step(fake, model="o4-mini", tools=(), reasoning=ReasoningOptions(budget_tokens=2000))
    assert fake.received[-1].body["reasoning_effort"] == "low" and "tools" not in fake.received[-1].body
    await stream_step(fake, model="gpt-5", reasoning=ReasoningOptions(effort="minimal"))
    assert fake.received[-1].body["reasoning_effort"] == "minimal" and fake.refusals == []
    await stream_step(fake, model="gpt-4.1")
    assert "reasoning_effort" not in fake.received[-1].body


TURN = (
    ReasoningPart("I should check."),
    TextPart("Checking."),
    ToolCallPart("call_a", "get_weather", PARIS),
    ToolCallPart("call_b", "get_weather", '{"city": "Os'),
    ToolResultPart("call_a", "get_weather", output={"temp": 21}),
    ToolResultPart("call_b", "get_weather", error={"code": "invalid_arguments", "message": "bad JSON"}, isError=True),
    TextPart("It is 21 degrees."),
)


async def test_the_transcript_goes_back_as_tool_calls_and_tool_messages() -> None:
    fake = FakeOpenAI()
    history = [
        ContextMessage("user", "weather?"),
        ContextMessage("assistant", "Checking.It is 21 degrees.", TURN),
        ContextMessage("user", "thanks"),
    ]
    step = await stream_step(fake, model=MODEL, messages=history)
    assert step.text == "Hello, world!" and fake.refusals == []
    assert fake.received[-1].body["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Os'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp":21}'},
        {
            "role": "tool",
            "tool_call_id": "call_b",
            "content": '{"error":{"code":"invalid_arguments","message":"bad JSON"}}',
        },
        {"role": "assistant", "content": "It is 21 degrees."},
        {"role": "user", "content": "thanks"},
    ]


async def test_a_call_stored_without_its_result_is_answered_cancelled() -> None:
    fake = FakeOpenAI()
    parts = (ToolCallPart("call_a", "get_weather", PARIS), ToolCallPart("call_b", "get_weather", PARIS))
    history = [
        ContextMessage("user", "weather?"),
        ContextMessage("assistant", "", (*parts, ToolResultPart("call_a", "get_weather", output=1))),
    ]
    await stream_step(fake, model=MODEL, messages=history)
    assert fake.refusals == []
    tool_messages = [m for m in fake.received[-1].body["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_a", "call_b"]
    assert '"cancelled"' in tool_messages[1]["content"]


async def test_the_fake_refuses_a_call_left_unanswered_like_openai() -> None:
    fake = FakeOpenAI()
    fake.reset()
    fake.url = "http://upstream.test"
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "user", "content": "and?"},
    ]
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        response = await http.post(
            fake.base_url() + "/chat/completions",
            headers={"authorization": f"Bearer {fake.key}"},
            json={"model": MODEL, "messages": messages, "stream": True},
        )
    assert response.status_code == 400
    assert "did not have response messages: c1" in response.json()["error"]["message"]


async def test_reasoning_and_text_in_one_delta_keep_their_order() -> None:
    def chunk(delta: dict[str, object], finish: str | None = None) -> str:
        body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n"

    raw = [
        chunk({"reasoning_content": "think"}),
        chunk({"reasoning_content": " done", "content": "Hi"}),
        chunk({}, "stop"),
    ]
    step = await stream_step(FakeOpenAI(), Reply(raw=[*raw, "data: [DONE]\n\n"]), model=MODEL)
    assert step.kinds() == ["reasoning", "text", "end"]
    assert step.reasoning == "think done" and step.text == "Hi"
