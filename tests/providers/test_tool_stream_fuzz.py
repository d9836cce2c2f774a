"""Generated tool and reasoning streams, cut anywhere and garbled: never an exception other than ProviderError.

Well-formed replies (any calls, ids or none, arguments cut or whole, reasoning, signatures, redacted thinking)
cut at any byte offsets stream the same step as uncut, and the transcript built from that step, every call
answered, is one the fake (as the real API) accepts on the next request. Garbled event sequences of each
provider's vocabulary end the step or fail it with a ProviderError, never anything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lean_chat.providers.base import ContextMessage, ProviderError
from lean_chat.providers.events import ReasoningDelta, ToolCall
from lean_chat.providers.parts import Part, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from tests.support.apps import in_process
from tests.support.frames import check_grammar, parse_frames
from tests.support.provider_steps import Streamed, stream_step
from tests.support.tools import get_weather
from tests.support.upstreams import Call, FakeAnthropic, FakeGemini, FakeOpenAI, FakeUpstream, Reply

FAKES: dict[str, Callable[[], FakeUpstream]] = {"openai": FakeOpenAI, "anthropic": FakeAnthropic, "gemini": FakeGemini}
MODELS = {"openai": "gpt-4.1", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
NO_RETRIES: dict[str, Any] = {"openai_max_retries": 0, "anthropic_max_retries": 0, "gemini_max_retries": 0}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
names = st.sampled_from(["get_weather", "get_time", "unknown_tool", ""])


@st.composite
def calls(draw: st.DrawFn, gemini: bool) -> Call:
    """A scripted call: arguments as an object, or (not for Gemini) text that may be cut mid-JSON."""
    args: Any = draw(st.dictionaries(st.sampled_from(["city", "zone", "n"]), json_values, max_size=3))
    if not gemini and draw(st.booleans()):
        text = json.dumps(args)
        args = text[: draw(st.integers(0, len(text)))]
    call_id = draw(st.sampled_from(["", None, "fixed-id"])) if not gemini else draw(st.sampled_from(["", "fc-1"]))
    return Call(draw(names), args, id=call_id, pieces=draw(st.integers(1, 4)))


@st.composite
def replies(draw: st.DrawFn, name: str) -> Reply:
    """A well-formed reply of this provider with any mix of reasoning, text and calls."""
    made = draw(st.lists(calls(gemini=name == "gemini"), max_size=3))
    ids = [c.id for c in made if c.id not in ("", None)]
    if len(ids) != len(set(ids)):  # a fixed id used twice is no valid upstream reply
        made = made[:1]
    return Reply(
        tokens=draw(st.lists(texts.filter(bool), max_size=4)),
        reasoning=draw(st.lists(texts.filter(bool), max_size=3)),
        calls=made,
        signed=draw(st.booleans()),
        redacted=name == "anthropic" and draw(st.booleans()),
        call_index=draw(st.sampled_from(["normal", "missing", "reused"])) if name == "openai" else "normal",
        late_signature=name == "gemini" and draw(st.booleans()),
    )


def summary(step: Streamed) -> tuple[Any, ...]:
    """What must not depend on how the body was cut (ids made by the provider left out)."""
    return (step.text, step.reasoning, [(c.name, c.args_json) for c in step.calls], step.end.finish_reason)


def engine_parts(step: Streamed) -> tuple[Part, ...]:
    """The step's parts as the engine keeps them: the provider's own, else built from what streamed, in order."""
    if step.end.parts is not None:
        return step.end.parts
    parts: list[Part] = []
    for item in step.items:
        if isinstance(item, list):
            if parts and isinstance(parts[-1], TextPart):
                parts[-1] = TextPart(parts[-1].text + "".join(item))
            else:
                parts.append(TextPart("".join(item)))
        elif isinstance(item, ReasoningDelta):
            if parts and isinstance(parts[-1], ReasoningPart):
                parts[-1] = ReasoningPart(parts[-1].text + item.text)
            else:
                parts.append(ReasoningPart(item.text))
        elif isinstance(item, ToolCall):
            parts.append(
                ToolCallPart(
                    item.id,
                    item.name,
                    json.loads(item.args_json) if _json(item.args_json) else item.args_json,
                    item.state,
                )
            )
    return tuple(parts)


def _json(text: str) -> bool:
    """True when the text decodes as JSON."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("name", list(FAKES))
def test_cut_replies_stream_the_same_step_and_a_valid_next_transcript(name: str) -> None:
    @FUZZ
    @given(reply=replies(name), cuts=st.lists(st.integers(1, 4000), max_size=8))
    def check(reply: Reply, cuts: list[int]) -> None:
        async def run() -> None:
            fake = FAKES[name]()
            whole = await stream_step(fake, reply, model=MODELS[name])
            cut = await stream_step(fake, Reply(**{**reply.__dict__, "cuts": cuts}), model=MODELS[name])
            assert summary(cut) == summary(whole)
            results = [ToolResultPart(c.id, c.name, output={"ok": True}) for c in cut.calls]
            turn = (*engine_parts(cut), *results)
            history = [
                ContextMessage("user", "q"),
                ContextMessage("assistant", cut.text, turn),
                ContextMessage("user", "again"),
            ]
            await stream_step(fake, Reply(), model=MODELS[name], messages=history)
            assert fake.refusals == [], fake.received[-1].body

        anyio.run(run)

    check()


def openai_events() -> st.SearchStrategy[str]:
    """OpenAI chunks with any mix of content, reasoning and tool call fragments, and [DONE] or garbage."""
    fragment = st.fixed_dictionaries(
        {},
        optional={
            "index": st.integers(-1, 3) | st.none(),
            "id": st.sampled_from(["c1", "c2", ""]) | st.none(),
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {}, optional={"name": names | st.none(), "arguments": texts | st.integers()}
            ),
        },
    )
    delta = st.fixed_dictionaries(
        {},
        optional={
            "content": texts | st.none(),
            "reasoning_content": texts | st.none(),
            "reasoning": json_values,
            "tool_calls": st.lists(fragment, max_size=3) | st.none(),
        },
    )
    choice = st.fixed_dictionaries(
        {"index": st.just(0), "delta": delta},
        optional={
            "finish_reason": st.sampled_from(["stop", "tool_calls", "length", "content_filter", "odd"]) | st.none()
        },
    )
    chunk = st.builds(lambda c: f"data: {json.dumps({'choices': c})}\n\n", st.lists(choice, max_size=2))
    return chunk | st.sampled_from(["data: [DONE]\n\n", "data: {not json\n\n", 'data: {"error": "boom"}\n\n'])


def anthropic_events() -> st.SearchStrategy[str]:
    """Anthropic events of every kind with any index, block type and delta, in any order."""
    block = st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "thinking", "redacted_thinking", "tool_use", "server_tool_use", "odd"])},
        optional={"id": texts, "name": names, "data": texts, "input": json_values},
    )
    delta = st.fixed_dictionaries(
        {"type": st.sampled_from(["text_delta", "thinking_delta", "signature_delta", "input_json_delta", "odd"])},
        optional={"text": texts, "thinking": texts, "signature": texts, "partial_json": texts, "stop_reason": texts},
    )
    index = st.integers(0, 3)
    events = st.one_of(
        st.builds(
            lambda i, b: ("content_block_start", {"type": "content_block_start", "index": i, "content_block": b}),
            index,
            block,
        ),
        st.builds(
            lambda i, d: ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}), index, delta
        ),
        st.builds(lambda i: ("content_block_stop", {"type": "content_block_stop", "index": i}), index),
        st.builds(
            lambda r: (
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": r}, "usage": {"output_tokens": 3}},
            ),
            st.sampled_from(["end_turn", "tool_use", "max_tokens", "refusal", "pause_turn"]) | st.none(),
        ),
        st.just(("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 1}}})),
        st.just(("message_stop", {"type": "message_stop"})),
        st.just(("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})),
        st.just(("ping", {"type": "ping"})),
    )
    return st.builds(lambda e: f"event: {e[0]}\ndata: {json.dumps(e[1])}\n\n", events) | st.just(
        "event: odd\ndata: {\n\n"
    )


def gemini_events() -> st.SearchStrategy[str]:
    """Gemini chunks with any mix of text, thought, signature and functionCall parts, and finish reasons."""
    function = st.fixed_dictionaries({}, optional={"name": names, "args": json_values, "id": texts | st.none()})
    part = st.fixed_dictionaries(
        {},
        optional={"text": texts, "thought": st.booleans(), "thoughtSignature": texts, "functionCall": function},
    )
    candidate = st.fixed_dictionaries(
        {"content": st.fixed_dictionaries({"role": st.just("model"), "parts": st.lists(part, max_size=3)})},
        optional={"finishReason": st.sampled_from(["STOP", "MAX_TOKENS", "MALFORMED_FUNCTION_CALL", "SAFETY"])},
    )
    chunk = st.builds(lambda c: f"data: {json.dumps({'candidates': c})}\r\n\r\n", st.lists(candidate, max_size=2))
    return chunk | st.just("data: [1, 2\r\n\r\n")


EVENTS = {"openai": openai_events, "anthropic": anthropic_events, "gemini": gemini_events}


@pytest.mark.parametrize("name", list(FAKES))
def test_garbled_event_sequences_end_or_fail_cleanly(name: str) -> None:
    @FUZZ
    @given(events=st.lists(EVENTS[name](), max_size=12), cuts=st.lists(st.integers(1, 3000), max_size=4))
    def check(events: list[str], cuts: list[int]) -> None:
        async def run() -> None:
            step = Streamed()
            try:
                await stream_step(
                    FAKES[name](), Reply(raw=events, cuts=cuts), model=MODELS[name], into=step, **NO_RETRIES
                )
            except ProviderError:
                return
            assert step.items, "a step that ends well ends with its StepEnd"
            step.end  # noqa: B018 (asserts the last item is the StepEnd)
            assert all(isinstance(c.id, str) and c.id for c in step.calls)

        anyio.run(run)

    check()


@pytest.mark.parametrize("name", list(FAKES))
def test_garbled_upstream_steps_through_the_app_never_give_a_500_or_a_traceback(
    name: str, served_fakes: dict[str, FakeUpstream]
) -> None:
    fake = served_fakes[name]
    model = {"openai": "gpt-4.1", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-3-pro-preview"}[name]

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(events=st.lists(EVENTS[name](), max_size=10), opted=st.booleans(), reasoning=st.booleans())
    def check(events: list[str], opted: bool, reasoning: bool) -> None:
        fake.reset(Reply(raw=events), Reply(tokens=["ok"]))
        params: dict[str, Any] = {"model": model}
        if opted:
            params["events"] = ["reasoning", "tools"]
        if reasoning:
            params["reasoning"] = {"effort": "low"}
        payload = {"userId": "fuzz", "messages": [{"role": "user", "content": "go"}], "params": params}

        async def run() -> None:
            settings_ = {"sqlite_path": "", "tools": [get_weather], **fake.options(), f"{name}_max_retries": 0}
            async with in_process(**settings_) as http:
                response = await http.post("/chat/stream", json=payload)
            assert response.status_code == 200
            assert "Traceback" not in response.text
            last = check_grammar(parse_frames(response.content), opted_in=opted)
            assert last.event == "done" or last.data["error"]["code"] != "internal_error", last.data

        anyio.run(run)

    check()
