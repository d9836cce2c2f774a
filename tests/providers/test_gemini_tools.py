"""Gemini function calls and thoughts: whole calls, ids made, thought signatures kept with their parts and sent back."""

from __future__ import annotations

import pytest

from lean_chat.providers.base import ContextMessage, ProviderError, ReasoningOptions
from lean_chat.providers.parts import Part, ProviderState, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from tests.support.provider_steps import WEATHER, Streamed, stream_step
from tests.support.transcript_checks import gemini_signature
from tests.support.upstreams import Call, FakeGemini, Reply

pytestmark = pytest.mark.anyio

MODEL = "gemini-3-pro-preview"
PARIS = {"city": "Paris"}


def history_of(streamed: Streamed, *results: ToolResultPart) -> list[ContextMessage]:
    """The conversation after one step: the question, then the step's parts and these results."""
    assert streamed.end.parts is not None
    parts: tuple[Part, ...] = (*streamed.end.parts, *results)
    return [ContextMessage("user", "weather?"), ContextMessage("assistant", streamed.text, parts)]


async def test_thoughts_then_whole_calls_without_ids() -> None:
    calls = [Call("get_weather", PARIS), Call("get_weather", {"city": "Oslo"})]
    reply = Reply(tokens=[], reasoning=["Two cities", ", two calls."], calls=calls)
    step = await stream_step(FakeGemini(), reply, model=MODEL, reasoning=ReasoningOptions(effort="low"))
    assert step.kinds() == ["reasoning", "call", "call", "end"]
    assert step.reasoning == "Two cities, two calls."
    first, second = step.calls
    assert first.id.startswith("call_") and second.id.startswith("call_") and first.id != second.id
    assert (first.name, first.args_json, second.args_json) == ("get_weather", '{"city":"Paris"}', '{"city":"Oslo"}')
    assert first.state == ProviderState(
        "gemini", MODEL, {"thoughtSignature": gemini_signature(MODEL, "call:get_weather")}
    )
    assert second.state is None  # only the first call of a step carries the signature
    assert step.end.finish_reason == "tool-calls"
    assert step.end.parts == (
        ReasoningPart("Two cities, two calls."),
        ToolCallPart(first.id, "get_weather", PARIS, first.state),
        ToolCallPart(second.id, "get_weather", {"city": "Oslo"}),
    )


async def test_a_call_with_an_id_keeps_it_and_the_result_answers_it() -> None:
    fake = FakeGemini(Reply(tokens=[], calls=[Call("get_weather", PARIS, id="fc-7")]))
    first = await stream_step(fake, model=MODEL)
    assert [c.id for c in first.calls] == ["fc-7"]
    history = history_of(first, ToolResultPart("fc-7", "get_weather", output={"temp": 21}))
    await stream_step(fake, Reply(), model=MODEL, messages=history)
    assert fake.refusals == []
    model, user = fake.received[-1].body["contents"][1:]
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": PARIS, "id": "fc-7"},
                "thoughtSignature": gemini_signature(MODEL, "call:get_weather"),
            }
        ],
    }
    assert user == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": {"temp": 21}}, "id": "fc-7"}}],
    }


async def test_the_signed_call_goes_back_and_gemini_3_accepts_the_next_step() -> None:
    fake = FakeGemini(Reply(tokens=["Looking."], reasoning=["Hmm."], calls=[Call("get_weather", PARIS)]))
    first = await stream_step(fake, model=MODEL, reasoning=ReasoningOptions(effort="high"))
    (call,) = first.calls
    history = history_of(
        first, ToolResultPart(call.id, "get_weather", error={"code": "timeout", "message": "slow"}, isError=True)
    )
    second = await stream_step(fake, Reply(tokens=["Sorry."]), model=MODEL, messages=history)
    assert fake.refusals == [] and second.text == "Sorry."
    contents = fake.received[-1].body["contents"]
    assert contents[1]["parts"] == [
        {"text": "Looking."},
        {
            "functionCall": {"name": "get_weather", "args": PARIS},
            "thoughtSignature": gemini_signature(MODEL, "call:get_weather"),
        },
    ]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"error": {"code": "timeout", "message": "slow"}}}}
    ]


async def test_gemini_3_refuses_a_current_turn_call_without_its_signature() -> None:
    fake = FakeGemini(Reply(tokens=[], calls=[Call("get_weather", PARIS)], signed=False))
    first = await stream_step(fake, model=MODEL)
    (call,) = first.calls
    history = [
        ContextMessage("user", "weather?"),
        ContextMessage(
            "assistant",
            "",
            (ToolCallPart(call.id, "get_weather", PARIS), ToolResultPart(call.id, "get_weather", output=1)),
        ),
    ]
    with pytest.raises(ProviderError, match="missing a thought_signature"):
        await stream_step(fake, model=MODEL, messages=history, gemini_max_retries=0)
    await stream_step(fake, model="gemini-2.5-flash", messages=history)  # older models do not ask for it
    assert fake.received[-1].body["contents"][1]["parts"] == [{"functionCall": {"name": "get_weather", "args": PARIS}}]


@pytest.mark.parametrize("late", [False, True], ids=["on-the-last-text", "on-a-later-empty-part"])
async def test_a_text_signature_stays_with_its_text(late: bool) -> None:
    fake = FakeGemini(Reply(tokens=["Ciao", " mondo"], reasoning=["Greet."], late_signature=late))
    first = await stream_step(fake, model=MODEL, reasoning=ReasoningOptions())
    signature = gemini_signature(MODEL, "text")
    assert first.text == "Ciao mondo"
    assert first.end.parts == (
        ReasoningPart("Greet."),
        TextPart("Ciao mondo", ProviderState("gemini", MODEL, {"thoughtSignature": signature})),
    )
    history = [*history_of(first), ContextMessage("user", "again")]
    await stream_step(fake, Reply(), model=MODEL, messages=history)
    assert fake.refusals == []
    assert fake.received[-1].body["contents"][1] == {
        "role": "model",
        "parts": [{"text": "Ciao mondo", "thoughtSignature": signature}],
    }


async def test_signatures_of_another_model_are_dropped() -> None:
    fake = FakeGemini(Reply(tokens=[], calls=[Call("get_weather", PARIS)]))
    first = await stream_step(fake, model="gemini-2.5-pro")
    history = [
        *history_of(first, ToolResultPart(first.calls[0].id, "get_weather", output=1)),
        ContextMessage("user", "more"),
    ]
    await stream_step(fake, Reply(), model=MODEL, messages=history)
    assert fake.refusals == []
    assert fake.received[-1].body["contents"][1]["parts"] == [{"functionCall": {"name": "get_weather", "args": PARIS}}]


@pytest.mark.parametrize(
    ("model", "reasoning", "config"),
    [
        ("gemini-2.5-flash", ReasoningOptions(effort="low"), {"includeThoughts": True, "thinkingBudget": 1024}),
        ("gemini-2.5-pro", ReasoningOptions(budget_tokens=5000), {"includeThoughts": True, "thinkingBudget": 5000}),
        ("gemini-3-pro-preview", ReasoningOptions(effort="medium"), {"includeThoughts": True, "thinkingLevel": "high"}),
        ("gemini-3-pro-preview", ReasoningOptions(effort="low"), {"includeThoughts": True, "thinkingLevel": "low"}),
        ("gemini-2.5-flash", ReasoningOptions(), {"includeThoughts": True}),
        ("gemini-2.5-flash", ReasoningOptions(effort="minimal"), {"includeThoughts": True, "thinkingBudget": 512}),
        ("gemini-3-pro-preview", ReasoningOptions(effort="minimal"), {"includeThoughts": True, "thinkingLevel": "low"}),
    ],
)
async def test_the_thinking_config(model: str, reasoning: ReasoningOptions, config: dict[str, object]) -> None:
    fake = FakeGemini()
    await stream_step(fake, model=model, reasoning=reasoning)
    assert fake.refusals == []
    assert fake.received[-1].body["generationConfig"] == {"thinkingConfig": config}


async def test_tools_are_function_declarations() -> None:
    fake = FakeGemini()
    await stream_step(fake, model=MODEL)
    body = fake.received[-1].body
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": WEATHER.description, "parametersJsonSchema": WEATHER.parameters}
            ]
        }
    ]
    assert "generationConfig" not in body


async def test_a_stream_that_ends_before_its_finish_fails_without_a_call() -> None:
    fake = FakeGemini(Reply(tokens=["a"], calls=[Call("get_weather", PARIS)], end_after=1))
    streamed = Streamed()
    with pytest.raises(ProviderError):
        await stream_step(fake, model=MODEL, into=streamed, gemini_max_retries=0)
    assert streamed.text == "a" and streamed.calls == []
