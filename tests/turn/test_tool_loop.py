"""The tool loop end to end through the mock: steps, concurrent calls, every failure a result, opt-in events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from lean_chat.frames import done_frame
from tests.support.apps import in_process, turn
from tests.support.frames import Frame, check_grammar, parse_frames
from tests.support.tools import add, explode, get_weather, refuse, tool_body, unserializable

TOOLS: list[Callable[..., Any]] = [get_weather, add, explode, refuse, unserializable]
pytestmark = pytest.mark.anyio

MAIN_STREAMS = json.loads((Path(__file__).parent / "data" / "main_streams.json").read_text("utf-8"))


def events_of(frames: list[Frame], name: str) -> list[dict[str, Any]]:
    """The data of every frame of this event."""
    return [f.data for f in frames if f.event == name]


async def history(http: httpx.AsyncClient, user_id: str) -> list[dict[str, Any]]:
    """The user's default conversation."""
    messages: list[dict[str, Any]] = (await http.get("/chat/history", params={"userId": user_id})).json()["messages"]
    return messages


@pytest.mark.parametrize("name", sorted(MAIN_STREAMS))
async def test_a_client_that_does_not_opt_in_gets_mains_bytes_even_with_tools_registered(name: str) -> None:
    # The bodies were recorded from main (before tools existed) for the same requests: not a byte differs.
    case = MAIN_STREAMS[name]
    async with in_process(create_app(sqlite_path="", tools=TOOLS)) as http:
        response = await turn(http, case["request"])
    assert response.content == case["body"].encode("utf-8")


async def test_tools_run_for_a_client_that_does_not_opt_in_and_it_sees_only_tokens_and_done() -> None:
    async with in_process(create_app(sqlite_path="", tools=TOOLS)) as http:
        body = tool_body("plain", "weather?", [{"name": "get_weather", "args": {"city": "Oslo"}}], reasoning="hmm")
        response = await turn(http, body)
        frames = parse_frames(response.content)
        done = check_grammar(frames)
        content = done.data["message"]["content"]
        assert content.startswith('Tool get_weather returned {"city":"Oslo","celsius":21}.\n\nMock reply')
        assert set(done.data) == {"type", "message", "provider", "usage", "conversationId"}
        assert done.data["message"] == {"role": "assistant", "content": content}
        assert frames[-1].raw.encode() + b"\n\n" == done_frame(
            content, "mock:gpt-4.1", done.data["usage"], "default:plain"
        )
        stored = (await history(http, "plain"))[-1]
        assert stored["content"] == content
        assert [p["type"] for p in stored["meta"]["parts"]] == ["reasoning", "tool_call", "tool_result", "text"]


async def test_opted_in_frames_have_the_documented_shapes_and_order() -> None:
    calls = [
        {"name": "get_weather", "args": {"city": "Paris"}},
        {"name": "add", "args": {"a": 2, "b": 3}},
    ]
    async with in_process(create_app(sqlite_path="", tools=TOOLS)) as http:
        body = tool_body("shapes", "go", calls, events=["reasoning", "tools"], reasoning="Think first, then call.")
        response = await turn(http, body)
    frames = parse_frames(response.content)
    done = check_grammar(frames, opted_in=True)
    names = [f.event for f in frames]
    assert names[:2] == ["reasoning", "tool_call"] or names[0] == "reasoning"
    assert "".join(d["delta"] for d in events_of(frames, "reasoning")) == "Think first, then call."
    assert all(d["step"] == 0 for d in events_of(frames, "reasoning"))
    assert events_of(frames, "tool_call") == [
        {"type": "tool_call", "step": 0, "id": "call_0", "name": "get_weather", "args": {"city": "Paris"}},
        {"type": "tool_call", "step": 0, "id": "call_1", "name": "add", "args": {"a": 2, "b": 3}},
    ]
    results = sorted(events_of(frames, "tool_result"), key=lambda d: d["id"])
    assert results == [
        {
            "type": "tool_result",
            "step": 0,
            "id": "call_0",
            "name": "get_weather",
            "output": {"city": "Paris", "celsius": 21},
            "isError": False,
        },
        {"type": "tool_result", "step": 0, "id": "call_1", "name": "add", "output": 5, "isError": False},
    ]
    steps = events_of(frames, "step")
    assert [(s["index"], s["finishReason"]) for s in steps] == [(0, "tool-calls"), (1, "stop")]
    assert all(set(s) == {"type", "index", "finishReason", "usage"} and s["usage"]["tokens"] >= 0 for s in steps)
    # Frame order: step 0's reasoning and calls, its `step`, the results, then step 1's tokens and `step`, `done`.
    first_result = names.index("tool_result")
    assert names.index("step") < first_result < names.index("token")
    assert names[-2:] == ["step", "done"]
    # done: parts after content, steps after conversationId; no opaque state anywhere on the wire.
    message = done.data["message"]
    assert list(message) == ["role", "content", "parts"]
    assert list(done.data) == ["type", "message", "provider", "usage", "conversationId", "steps"]
    assert [p["type"] for p in message["parts"]] == [
        "reasoning",
        "tool_call",
        "tool_call",
        "tool_result",
        "tool_result",
        "text",
    ]
    assert message["parts"][0] == {"type": "reasoning", "text": "Think first, then call."}
    assert message["parts"][-1] == {"type": "text", "text": message["content"]}
    assert done.data["steps"] == [{k: v for k, v in s.items() if k != "type"} for s in steps]
    assert b"signature" not in response.content and b"state" not in response.content


async def test_each_opt_in_kind_brings_only_its_own_frames() -> None:
    calls = [{"name": "add", "args": {"a": 1, "b": 1}}]
    async with in_process(create_app(sqlite_path="", tools=TOOLS)) as http:
        only_reasoning = parse_frames((await turn(http, tool_body("k1", "x", calls, ["reasoning"], "why"))).content)
        only_tools = parse_frames((await turn(http, tool_body("k2", "x", calls, ["tools"], "why"))).content)
        unknown = parse_frames((await turn(http, tool_body("k3", "x", calls, ["bogus"], "why"))).content)
    assert {f.event for f in only_reasoning} == {"reasoning", "step", "token", "done"}
    assert {f.event for f in only_tools} == {"tool_call", "tool_result", "step", "token", "done"}
    assert {f.event for f in unknown} == {"token", "done"} and "parts" not in unknown[-1].data["message"]


async def test_every_failure_is_a_result_the_model_sees_never_a_failed_turn() -> None:
    calls: list[dict[str, Any]] = [
        {"name": "add", "args": {"a": 1, "b": "two"}},
        {"name": "add", "args": {"a": 1}},
        {"name": "add", "args": {"a": 1, "b": 2, "c": 3}},
        {"name": "add", "args": [1, 2]},
        {"name": "explode", "args": {"reason": "boom"}},
        {"name": "refuse", "args": {"why": "policy"}},
        {"name": "unserializable", "args": {}},
        {"name": "no_such_tool", "args": {}},
    ]
    async with in_process(create_app(sqlite_path="", tools=TOOLS)) as http:
        response = await turn(http, tool_body("fail", "x", calls, ["tools"]))
    frames = parse_frames(response.content)
    done = check_grammar(frames, opted_in=True)
    assert done.event == "done"
    by_id = {d["id"]: d for d in events_of(frames, "tool_result")}
    codes = [by_id[f"call_{i}"]["error"]["code"] for i in range(len(calls))]
    assert codes == [
        "invalid_arguments",
        "invalid_arguments",
        "invalid_arguments",
        "invalid_arguments",
        "tool_error",
        "tool_error",
        "unserializable_result",
        "unknown_tool",
    ]
    assert all(d["isError"] is True and "output" not in d for d in by_id.values())
    assert "`b`" in by_id["call_0"]["error"]["message"]
    assert by_id["call_4"]["error"]["message"] == "The tool failed (RuntimeError)."
    assert by_id["call_5"]["error"]["message"] == "cannot do that: policy"
    assert b"secret internals" not in response.content and b"Traceback" not in response.content
    assert "Tool explode failed: tool_error." in done.data["message"]["content"]


async def test_limits_on_calls_per_step_result_size_and_time() -> None:
    async def big(n: int) -> str:
        """A large result."""
        return "x" * n

    async def sleepy() -> str:
        """Too slow."""
        import asyncio

        await asyncio.sleep(5)
        return "late"

    app = create_app(
        sqlite_path="",
        tools=[big, sleepy, add],
        max_tool_calls_per_step=3,
        max_tool_result_bytes=100,
        tool_timeout_seconds=0.05,
    )
    calls = [
        {"name": "big", "args": {"n": 10}},
        {"name": "big", "args": {"n": 1000}},
        {"name": "sleepy", "args": {}},
        {"name": "add", "args": {"a": 1, "b": 2}},
    ]
    async with in_process(app) as http:
        frames = parse_frames((await turn(http, tool_body("lim", "x", calls, ["tools"]))).content)
    check_grammar(frames, opted_in=True)
    by_id = {d["id"]: d for d in events_of(frames, "tool_result")}
    assert by_id["call_0"]["output"] == "x" * 10
    assert by_id["call_1"]["error"]["code"] == "result_too_large"
    assert by_id["call_2"]["error"]["code"] == "timeout"
    assert by_id["call_3"]["error"]["code"] == "too_many_tool_calls"


async def test_params_tools_narrows_and_max_steps_stops_the_loop() -> None:
    calls = [{"name": "add", "args": {"a": 1, "b": 2}}, {"name": "get_weather", "args": {"city": "Rome"}}]
    async with in_process(create_app(sqlite_path="", tools=TOOLS)) as http:
        narrowed = parse_frames((await turn(http, tool_body("n1", "x", calls, ["tools"], tools=["add"]))).content)
        none = parse_frames((await turn(http, tool_body("n2", "x", calls, ["tools"], tools=[]))).content)
        one_step = parse_frames((await turn(http, tool_body("n3", "x", calls, ["tools"], maxSteps=1))).content)
        higher = parse_frames((await turn(http, tool_body("n4", "x", calls, ["tools"], maxSteps=99))).content)
        stored = (await history(http, "n3"))[-1]
    assert [d.get("isError") for d in sorted(events_of(narrowed, "tool_result"), key=lambda d: d["id"])] == [
        False,
        True,
    ]
    assert all(d["error"]["code"] == "unknown_tool" for d in events_of(none, "tool_result"))
    # One step: its calls are answered (a valid transcript), and no second step streams.
    assert [s["index"] for s in events_of(one_step, "step")] == [0]
    assert len(events_of(one_step, "tool_result")) == 2 and events_of(one_step, "token") == []
    done = check_grammar(one_step, opted_in=True)
    assert done.data["message"]["content"] == "" and done.data["steps"][0]["finishReason"] == "tool-calls"
    assert [p["type"] for p in stored["meta"]["parts"]] == ["tool_call", "tool_call", "tool_result", "tool_result"]
    assert [s["index"] for s in events_of(higher, "step")] == [0, 1]


async def test_max_steps_setting_caps_the_loop() -> None:
    calls = [{"name": "add", "args": {"a": 1, "b": 2}}]
    async with in_process(create_app(sqlite_path="", tools=TOOLS, max_steps=1)) as http:
        frames = parse_frames((await turn(http, tool_body("cap", "x", calls, ["tools"], maxSteps=3))).content)
    assert [s["index"] for s in events_of(frames, "step")] == [0]


async def test_history_keeps_parts_without_opaque_state_and_the_store_keeps_the_state(sqlite_path: str) -> None:
    import sqlite3

    calls = [{"name": "get_weather", "args": {"city": "Lima"}}]
    async with in_process(create_app(sqlite_path=sqlite_path, tools=TOOLS)) as http:
        await turn(http, tool_body("hist", "x", calls, ["reasoning", "tools"], "Reason well."))
        messages = await history(http, "hist")
        page = (
            await http.get("/chat/conversation", params={"userId": "hist", "conversationId": "default:hist"})
        ).json()
    assert page["messages"] == messages
    assistant = messages[-1]
    assert assistant["meta"]["parts"][0] == {"type": "reasoning", "text": "Reason well."}
    assert "state" not in json.dumps(assistant)
    with sqlite3.connect(sqlite_path) as db:
        metas = [row[0] for row in db.execute("SELECT meta FROM lc_messages WHERE role = 'assistant'")]
    kept = json.loads(metas[-1])["parts"][0]
    assert kept["state"]["provider"] == "mock" and kept["state"]["data"]["signature"].startswith("mock-")


async def test_a_plain_reply_is_kept_exactly_as_before() -> None:
    async with in_process(create_app(sqlite_path="", tools=TOOLS)) as http:
        body = MAIN_STREAMS["plain"]["request"]
        await turn(http, body)
        opted = {**body, "userId": "plain2", "params": {**body["params"], "events": ["tools"]}}
        frames = parse_frames((await turn(http, opted)).content)
        stored = (await history(http, "golden"))[-1]
        stored_opted = (await history(http, "plain2"))[-1]
    assert stored["meta"] is None and stored_opted["meta"] is None
    done = check_grammar(frames, opted_in=True)
    assert done.data["message"]["parts"] == [{"type": "text", "text": done.data["message"]["content"]}]
    assert [f.event for f in frames if f.event != "token"] == ["step", "done"]


async def test_a_steps_calls_run_concurrently_and_results_come_as_each_finishes() -> None:
    import asyncio
    import time

    async def nap(seconds: float) -> float:
        """Sleep, then say how long."""
        await asyncio.sleep(seconds)
        return seconds

    def doze(seconds: float) -> float:
        """Sleep in a thread (a sync tool), then say how long."""
        time.sleep(seconds)
        return seconds

    calls = [
        {"name": "nap", "args": {"seconds": 0.4}},
        {"name": "doze", "args": {"seconds": 0.4}},
        {"name": "nap", "args": {"seconds": 0.05}},
    ]
    async with in_process(create_app(sqlite_path="", tools=[nap, doze])) as http:
        started = time.perf_counter()
        frames = parse_frames((await turn(http, tool_body("conc", "x", calls, ["tools"]))).content)
        took = time.perf_counter() - started
    assert took < 1.0  # one after the other: 0.85 s of tools alone, plus the mock's pauses
    results = events_of(frames, "tool_result")
    assert results[0]["id"] == "call_2"  # the quick one first
    done = check_grammar(frames, opted_in=True)
    ids = [p["id"] for p in done.data["message"]["parts"] if p["type"] == "tool_result"]
    assert ids == ["call_0", "call_1", "call_2"]  # the parts in the order of the calls
