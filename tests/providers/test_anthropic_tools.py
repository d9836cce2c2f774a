"""Anthropic tool use and extended thinking: blocks parsed, signatures kept, thinking sent back unmodified, budgets."""

from __future__ import annotations

from typing import Any

import pytest

from lean_chat.providers.base import ContextMessage, ProviderError, ReasoningOptions
from lean_chat.providers.events import StepEnd
from lean_chat.providers.parts import ProviderState, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from tests.support.provider_steps import WEATHER, Streamed, stream_step
from tests.support.transcript_checks import thinking_signature
from tests.support.upstreams import Call, FakeAnthropic, Reply

pytestmark = pytest.mark.anyio

MODEL = "claude-sonnet-4-5"
PARIS = {"city": "Paris"}
THINKING = ["The user wants", " the weather."]


def turn_of(end: StepEnd, *results: ToolResultPart) -> tuple[object, ...]:
    """A stored turn: the step's parts, then the results."""
    assert end.parts is not None
    return (*end.parts, *results)


async def test_thinking_text_and_tool_use_in_order_with_the_signature_kept() -> None:
    reply = Reply(tokens=["Let me check."], reasoning=THINKING, calls=[Call("get_weather", PARIS, pieces=5)])
    step = await stream_step(FakeAnthropic(), reply, model=MODEL, reasoning=ReasoningOptions(effort="low"))
    assert step.kinds() == ["reasoning", "text", "call", "end"]
    assert step.reasoning == "The user wants the weather." and step.text == "Let me check."
    (call,) = step.calls
    assert call.id == "toolu_1_0" and call.name == "get_weather" and call.args_json == '{"city":"Paris"}'
    signature = thinking_signature(MODEL, "The user wants the weather.")
    assert step.end.finish_reason == "tool-calls"
    assert step.end.parts == (
        ReasoningPart("The user wants the weather.", ProviderState("anthropic", MODEL, {"signature": signature})),
        TextPart("Let me check."),
        ToolCallPart("toolu_1_0", "get_weather", PARIS),
    )


async def test_the_next_request_carries_the_thinking_unmodified_and_is_accepted() -> None:
    fake = FakeAnthropic(
        Reply(tokens=["Checking."], reasoning=THINKING, calls=[Call("get_weather", PARIS)], redacted=True)
    )
    first = await stream_step(fake, model=MODEL, reasoning=ReasoningOptions(budget_tokens=2048))
    turn = turn_of(first.end, ToolResultPart(first.calls[0].id, "get_weather", output={"temp": 21}))
    history = [ContextMessage("user", "weather?"), ContextMessage("assistant", "Checking.", turn)]  # type: ignore[arg-type]
    fake.queue(Reply(tokens=["21 degrees."], reasoning=["Now answer."]))
    second = await stream_step(fake, model=MODEL, messages=history, reasoning=ReasoningOptions(budget_tokens=2048))
    assert fake.refusals == [] and second.text == "21 degrees."
    assistant, results = fake.received[-1].body["messages"][1:]
    assert [b["type"] for b in assistant["content"]] == ["redacted_thinking", "thinking", "text", "tool_use"]
    assert assistant["content"][1] == {
        "type": "thinking",
        "thinking": "The user wants the weather.",
        "signature": thinking_signature(MODEL, "The user wants the weather."),
    }
    assert assistant["content"][3] == {"type": "tool_use", "id": "toolu_1_0", "name": "get_weather", "input": PARIS}
    assert results == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1_0", "content": '{"temp":21}'}],
    }


async def test_thinking_of_another_model_is_dropped_and_the_fake_would_refuse_it() -> None:
    fake = FakeAnthropic(Reply(tokens=["Checking."], reasoning=THINKING, calls=[Call("get_weather", PARIS)]))
    first = await stream_step(fake, model=MODEL, reasoning=ReasoningOptions(effort="low"))
    turn = turn_of(first.end, ToolResultPart(first.calls[0].id, "get_weather", output=21))
    history = [
        ContextMessage("user", "weather?"),
        ContextMessage("assistant", "Checking.", turn),  # type: ignore[arg-type]
        ContextMessage("user", "and now?"),
    ]
    await stream_step(fake, Reply(), model="claude-opus-4-1", messages=history)
    assert fake.refusals == []
    sent = fake.received[-1].body["messages"][1]["content"]
    assert [b["type"] for b in sent] == ["text", "tool_use"]
    # The same thinking sent to the other model: the fake refuses it, as the signature is not that model's.
    await stream_step(fake, model=MODEL, messages=history)  # to its own model, it goes back and is accepted
    assert fake.refusals == [] and fake.received[-1].body["messages"][1]["content"][0]["type"] == "thinking"
    with pytest.raises(ProviderError, match="Invalid `signature`"):
        await stream_step(fake, model="claude-opus-4-1", messages=_forced(history), anthropic_max_retries=0)


def _forced(history: list[ContextMessage]) -> list[ContextMessage]:
    """The history with every state relabelled to another model (what a careless replay would send)."""
    out = []
    for m in history:
        if m.parts is None:
            out.append(m)
            continue
        parts = tuple(
            ReasoningPart(p.text, ProviderState("anthropic", "claude-opus-4-1", p.state.data))
            if isinstance(p, ReasoningPart) and p.state is not None
            else p
            for p in m.parts
        )
        out.append(ContextMessage(m.role, m.content, parts))
    return out


async def test_a_tool_use_without_json_takes_no_arguments() -> None:
    step = await stream_step(FakeAnthropic(), Reply(tokens=[], calls=[Call("list_files", "")]), model=MODEL)
    assert [(c.name, c.args_json) for c in step.calls] == [("list_files", "{}")]


async def test_a_tool_use_without_an_id_gets_one() -> None:
    step = await stream_step(
        FakeAnthropic(), Reply(tokens=[], calls=[Call("get_weather", PARIS, id=None)]), model=MODEL
    )
    (call,) = step.calls
    assert call.id.startswith("toolu_") and len(call.id) > 10


async def test_arguments_cut_by_max_tokens_make_no_call() -> None:
    calls = [Call("get_weather", PARIS), Call("get_weather", '{"city": "Os')]
    step = await stream_step(FakeAnthropic(), Reply(tokens=[], calls=calls, finish_reason="max_tokens"), model=MODEL)
    assert [c.args_json for c in step.calls] == ['{"city":"Paris"}']
    assert step.end.finish_reason == "length"


async def test_arguments_that_are_not_json_otherwise_reach_the_engine() -> None:
    step = await stream_step(
        FakeAnthropic(), Reply(tokens=[], calls=[Call("get_weather", '{"city": "Os')]), model=MODEL
    )
    assert [c.args_json for c in step.calls] == ['{"city": "Os']


@pytest.mark.parametrize("fault", [{"end_after": 6}, {"drop_after": 6}], ids=["ends", "drops"])
async def test_a_stream_that_ends_mid_call_fails_without_a_call(fault: dict[str, Any]) -> None:
    fake = FakeAnthropic(Reply(tokens=["a"], calls=[Call("get_weather", PARIS, pieces=4)], **fault))
    streamed = Streamed()
    with pytest.raises(ProviderError):
        await stream_step(fake, model=MODEL, into=streamed, anthropic_max_retries=0)
    assert streamed.text == "a" and streamed.calls == []


async def test_thinking_cut_before_its_signature_keeps_no_state() -> None:
    step = await stream_step(FakeAnthropic(), Reply(tokens=["x"], reasoning=THINKING, signed=False), model=MODEL)
    assert step.end.parts is None  # nothing to replay: the engine keeps the reasoning as it streamed


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "budget", "sent_max"),
    [
        (ReasoningOptions(effort="low"), 4000, 1024, 4000),
        (ReasoningOptions(effort="minimal"), 4000, 1024, 4000),
        (ReasoningOptions(effort="high"), 4000, 16384, 20384),
        (ReasoningOptions(budget_tokens=10), 4000, 1024, 4000),
        (ReasoningOptions(budget_tokens=3000), 1024, 3000, 4024),
        (ReasoningOptions(), 8192, 4096, 8192),
    ],
)
async def test_the_thinking_budget_is_at_least_1024_and_below_max_tokens(
    reasoning: ReasoningOptions, max_tokens: int, budget: int, sent_max: int
) -> None:
    fake = FakeAnthropic()
    await stream_step(fake, model=MODEL, reasoning=reasoning, anthropic_max_tokens=max_tokens)
    body = fake.received[-1].body
    assert fake.refusals == []
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget} and body["max_tokens"] == sent_max


async def test_tools_are_announced_with_their_input_schema() -> None:
    fake = FakeAnthropic()
    await stream_step(fake, model=MODEL)
    body = fake.received[-1].body
    assert body["tools"] == [
        {"name": "get_weather", "description": WEATHER.description, "input_schema": WEATHER.parameters}
    ]
    assert "thinking" not in body


async def test_calls_keep_their_order_behind_one_whose_json_is_not_whole() -> None:
    calls = [Call("get_weather", '{"city": "Os'), Call("get_time", {}), Call("get_weather", PARIS)]
    step = await stream_step(FakeAnthropic(), Reply(tokens=[], calls=calls), model=MODEL)
    assert [(c.name, c.args_json) for c in step.calls] == [
        ("get_weather", '{"city": "Os'),
        ("get_time", "{}"),
        ("get_weather", '{"city":"Paris"}'),
    ]
