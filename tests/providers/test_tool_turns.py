"""Tool turns end to end: lean_chat in front of each provider's fake, a tool registered, reasoning asked for.

One step and several, the opt-in frames and the plain ones, history reloaded, and the follow-up turn: every
request the fake gets is one its transcript check (the real API's rules) accepts. With thinking on, every scripted
step has reasoning, as the real models' steps do (Anthropic refuses a tool step's transcript without it).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.apps import in_process
from tests.support.frames import Frame, check_grammar, parse_frames
from tests.support.providers import lean
from tests.support.tools import add, get_weather
from tests.support.upstreams import Call, FakeUpstream, Reply

pytestmark = pytest.mark.anyio

MODELS = {"openai": "o4-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-3-pro-preview"}
PARIS = {"city": "Paris"}


def body(fake: FakeUpstream, text: str, user: str, **params: Any) -> dict[str, Any]:
    """A `/chat/stream` body for the fake's model, opted in to every event, with low reasoning effort."""
    params = {"model": MODELS[fake.name], "events": ["reasoning", "tools"], "reasoning": {"effort": "low"}, **params}
    return {"userId": user, "messages": [{"role": "user", "content": text}], "params": params}


async def stream(http: httpx.AsyncClient, payload: dict[str, Any]) -> tuple[list[Frame], Frame]:
    """One turn's frames and its final frame (grammar checked)."""
    response = await http.post("/chat/stream", json=payload)
    assert response.status_code == 200, response.text
    frames = parse_frames(response.content)
    return frames, check_grammar(frames, opted_in="events" in payload["params"])


def of(frames: list[Frame], name: str) -> list[dict[str, Any]]:
    """The data of each frame of this event."""
    return [f.data for f in frames if f.event == name]


async def test_one_tool_step_with_reasoning_then_a_follow_up_turn(upstream: FakeUpstream) -> None:
    upstream.reset(
        Reply(tokens=["Let me check."], reasoning=["The user", " wants weather."], calls=[Call("get_weather", PARIS)]),
        Reply(tokens=["It is 21 degrees", " in Paris."], reasoning=["Now answer."]),
    )
    async with lean(upstream, tools=[get_weather]) as http:
        frames, done = await stream(http, body(upstream, "Weather in Paris?", "t1"))
        assert done.event == "done", done.data
        assert "".join(d["delta"] for d in of(frames, "reasoning")) == "The user wants weather.Now answer."
        (call,) = of(frames, "tool_call")
        assert (call["name"], call["args"], call["step"]) == ("get_weather", PARIS, 0)
        (result,) = of(frames, "tool_result")
        assert result["id"] == call["id"] and result["output"] == {"city": "Paris", "celsius": 21}
        assert [s["finishReason"] for s in of(frames, "step")] == ["tool-calls", "stop"]
        message = done.data["message"]
        assert message["content"] == "Let me check.It is 21 degrees in Paris."
        assert [p["type"] for p in message["parts"]] == [
            "reasoning",
            "text",
            "tool_call",
            "tool_result",
            "reasoning",
            "text",
        ]
        assert "state" not in str(message) and "sig-" not in str(done.data)
        assert upstream.attempts == 2 and upstream.refusals == []
        stored = (await http.get("/chat/history", params={"userId": "t1"})).json()["messages"][-1]
        assert stored["meta"]["parts"] == message["parts"]

        upstream.reset(Reply(tokens=["You are welcome."]))
        _, done = await stream(http, body(upstream, "Thanks!", "t1"))
        assert done.event == "done", done.data
    assert upstream.refusals == []
    sent = upstream.received[-1].body
    text = str(sent)
    assert "Weather in Paris?" in text and "Thanks!" in text and "celsius" in text
    if upstream.name == "anthropic":  # the thinking went back, signed, on the later turn too (same model)
        assert sum(b.get("type") == "thinking" for m in sent["messages"] for b in _blocks(m)) == 2
    if upstream.name == "gemini":
        assert any("thoughtSignature" in p for c in sent["contents"] for p in c["parts"])


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """An Anthropic message's content blocks."""
    content = message["content"]
    return content if isinstance(content, list) else []


async def test_several_steps_and_parallel_calls(upstream: FakeUpstream) -> None:
    upstream.reset(
        Reply(tokens=[], reasoning=["Two things."], calls=[Call("get_weather", PARIS), Call("add", {"a": 2, "b": 3})]),
        Reply(tokens=["One more."], reasoning=["Then add."], calls=[Call("add", {"a": 5, "b": 21})]),
        Reply(tokens=["Done: 26."], reasoning=["Answer."]),
    )
    async with lean(upstream, tools=[get_weather, add]) as http:
        frames, done = await stream(http, body(upstream, "go", "t2"))
    assert done.event == "done", done.data
    assert [(c["step"], c["name"]) for c in of(frames, "tool_call")] == [(0, "get_weather"), (0, "add"), (1, "add")]
    assert [r["output"] for r in of(frames, "tool_result")] == [{"city": "Paris", "celsius": 21}, 5, 26]
    assert [s["finishReason"] for s in of(frames, "step")] == ["tool-calls", "tool-calls", "stop"]
    assert upstream.attempts == 3 and upstream.refusals == []


async def test_faulty_calls_become_error_results_and_the_next_request_is_valid(upstream: FakeUpstream) -> None:
    bad = '{"city": "Par' if upstream.name != "gemini" else {"town": 1}
    upstream.reset(
        Reply(tokens=[], reasoning=["Try."], calls=[Call("get_weather", bad, id=None), Call("no_such_tool", {})]),
        Reply(tokens=["Sorry."], reasoning=["Failed."]),
    )
    async with lean(upstream, tools=[get_weather]) as http:
        frames, done = await stream(http, body(upstream, "go", "t3"))
    assert done.event == "done", done.data
    codes = {r["id"]: r["error"]["code"] for r in of(frames, "tool_result")}  # in the order they finished
    assert [codes[c["id"]] for c in of(frames, "tool_call")] == ["invalid_arguments", "unknown_tool"]
    assert upstream.attempts == 2 and upstream.refusals == []


async def test_a_client_that_does_not_opt_in_sees_only_the_text(upstream: FakeUpstream) -> None:
    upstream.reset(
        Reply(tokens=["Checking. "], reasoning=["Hmm."], calls=[Call("get_weather", PARIS)]),
        Reply(tokens=["21 degrees."], reasoning=["So."]),
    )
    payload = body(upstream, "Weather?", "t4")
    del payload["params"]["events"]
    async with lean(upstream, tools=[get_weather]) as http:
        frames, done = await stream(http, payload)
    assert {f.event for f in frames} == {"token", "done"}
    assert "".join(f.data["token"] for f in frames if f.event == "token") == "Checking. 21 degrees."
    assert done.data["message"] == {"role": "assistant", "content": "Checking. 21 degrees."}
    assert upstream.refusals == []


async def test_a_stream_that_ends_mid_call_fails_cleanly_and_the_next_turn_is_valid(upstream: FakeUpstream) -> None:
    # Cut inside the call's argument fragments (Gemini's calls come whole: cut before it).
    cut = {"openai": 3, "anthropic": 5, "gemini": 1}[upstream.name]
    upstream.reset(Reply(tokens=["Let me see."], calls=[Call("get_weather", PARIS, pieces=4)], end_after=cut))
    async with lean(upstream, tools=[get_weather]) as http:
        frames, last = await stream(http, body(upstream, "Weather?", "t5"))
        assert last.event == "error" and of(frames, "tool_call") == []
        upstream.reset(Reply(tokens=["Fine."]))
        _, done = await stream(http, body(upstream, "Again?", "t5"))
    assert done.event == "done", done.data
    assert upstream.refusals == []


async def test_a_conversation_that_moves_between_providers_stays_valid_for_each(
    served_fakes: dict[str, FakeUpstream],
) -> None:
    for fake in served_fakes.values():
        fake.reset()
    claude, openai, gemini = served_fakes["anthropic"], served_fakes["openai"], served_fakes["gemini"]
    claude.reset(
        Reply(tokens=["Checking."], reasoning=["Weather."], calls=[Call("get_weather", PARIS)], redacted=True),
        Reply(tokens=["21 degrees."], reasoning=["Answer."]),
    )
    openai.reset(Reply(tokens=["Oslo: "], calls=[Call("get_weather", {"city": "Oslo"})]), Reply(tokens=["21 too."]))
    gemini.reset(Reply(tokens=["Both 21."], reasoning=["Sum up."]))
    settings: dict[str, Any] = {"sqlite_path": "", "tools": [get_weather]}
    for fake in served_fakes.values():
        settings.update(fake.options())
        settings[f"{fake.name}_max_retries"] = 0
    async with in_process(**settings) as http:
        for fake, text in ((claude, "Paris?"), (openai, "And Oslo?"), (gemini, "Summary?")):
            _, done = await stream(http, body(fake, text, "mover"))
            assert done.event == "done", (fake.name, done.data)
    for fake in (claude, openai, gemini):
        assert fake.refusals == [], fake.name
    # The thinking (signed for Claude) never reached the others; the calls and results did, in their formats.
    assert "thinking" not in str(openai.received[-1].body) and "redacted" not in str(gemini.received[-1].body)
    roles = [m["role"] for m in openai.received[-1].body["messages"]]
    assert roles[:4] == ["user", "assistant", "tool", "assistant"]
    contents = gemini.received[-1].body["contents"]
    assert sum("functionCall" in p for c in contents for p in c["parts"]) == 2
    assert sum("functionResponse" in p for c in contents for p in c["parts"]) == 2
