"""The UI message stream's bytes (http/ui_stream.py), exact; the engine's events as chunks; kept frames reframed;
and the event chunks read by the AI SDK's own client (tests/ai_sdk)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lean_chat.frames import error_frame, token_frames_with_ids, with_id
from lean_chat.http.ui_stream import UIFramer, UIReframer
from lean_chat.turn.events import ReasoningDelta, StepFinished, ToolCallEvent, ToolResultEvent, TurnEvent
from lean_chat.turn.framing import outcome_frame
from lean_chat.turn.outcomes import Done, Failed, Outcome, Stopped
from tests.support.npm import AI_SDK, run_node

DONE = Done("Hi there", "mock:gpt-4.1", {"tokens": 2}, "c1")


def chunks(data: bytes) -> list[Any]:
    """The JSON of each `data:` line (the `[DONE]` marker as the string); comments skipped."""
    assert data.endswith(b"\n\n")
    found: list[Any] = []
    for event in data.split(b"\n\n")[:-1]:
        lines = [line for line in event.split(b"\n") if not line.startswith(b":")]
        assert len(lines) == 1 and lines[0].startswith(b"data: "), event
        text = lines[0][len(b"data: ") :]
        found.append("[DONE]" if text == b"[DONE]" else json.loads(text))
    return found


def test_a_plain_reply_is_these_exact_bytes() -> None:
    framer = UIFramer("msg1")
    data = framer.tokens(["Hi", " "]) + framer.tokens(["there"]) + framer.outcome(DONE, None)
    assert data == (
        b'data: {"type":"start","messageId":"msg1"}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"text-1"}\n\n'
        b'data: {"type":"text-delta","id":"text-1","delta":"Hi"}\n\n'
        b'data: {"type":"text-delta","id":"text-1","delta":" "}\n\n'
        b'data: {"type":"text-delta","id":"text-1","delta":"there"}\n\n'
        b'data: {"type":"text-end","id":"text-1"}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","finishReason":"stop","messageMetadata":{"provider":"mock:gpt-4.1",'
        b'"usage":{"tokens":2},"conversationId":"c1"}}\n\n'
        b"data: [DONE]\n\n"
    )


@pytest.mark.parametrize(
    ("outcome", "request_id", "last"),
    [
        (Failed("boom", "provider_error"), "r-1", {"type": "error", "errorText": "boom", "code": "provider_error"}),
        (Failed("gone", "conversation_deleted"), None, {"type": "error", "errorText": "gone"}),
    ],
)
def test_a_failure_ends_with_error_then_done(outcome: Outcome, request_id: str | None, last: dict[str, Any]) -> None:
    found = chunks(UIFramer("m").tokens(["a"]) + UIFramer("m").outcome(outcome, request_id))
    error = found[-2]
    assert found[-1] == "[DONE]" and {**error, **last} == error
    assert ("requestId" in error) is (request_id is not None)


def test_a_failure_before_any_token_still_starts_the_message() -> None:
    found = chunks(UIFramer("m").outcome(Failed("no", "conversation_forbidden"), None))
    assert [c if isinstance(c, str) else c["type"] for c in found] == ["start", "start-step", "error", "[DONE]"]


def test_a_stopped_reply_says_so_in_its_metadata() -> None:
    stopped = Stopped("Hi", "mock:gpt-4.1", {"tokens": 1}, "c")
    finish = chunks(UIFramer("m").tokens(["Hi"]) + UIFramer("m").outcome(stopped, None))[-2]
    assert finish["type"] == "finish" and finish["messageMetadata"]["stopped"] is True


def test_line_separators_in_a_token_are_escaped() -> None:
    data = UIFramer("m").tokens(["a\u2028b", "c\x85"])
    assert "\u2028".encode() not in data and "\x85".encode() not in data
    assert [c["delta"] for c in chunks(data)[3:]] == ["a\u2028b", "c\x85"]


EVENTS: list[TurnEvent | list[str]] = [
    ReasoningDelta("Let me "),
    ReasoningDelta("think."),
    ["Checking", " "],
    ToolCallEvent(0, "call_0", "get_weather", {"city": "Paris"}),
    ToolCallEvent(0, "call_1", "broken", "{not json"),
    StepFinished(0, "tool-calls", {"tokens": 3}),
    ToolResultEvent(0, "call_0", "get_weather", {"temp": 21}, None, False),
    ToolResultEvent(0, "call_1", "broken", None, {"code": "invalid_arguments", "message": "bad JSON"}, True),
    ["It is", " 21."],
    StepFinished(1, "stop", {"tokens": 4}),
]


def framed(items: list[TurnEvent | list[str]], outcome: Outcome) -> bytes:
    """The stream a framer makes of these batches and events."""
    framer = UIFramer("m1")
    out = [framer.tokens(item) if isinstance(item, list) else framer.event(item) for item in items]
    return b"".join(out) + framer.outcome(outcome, None)


def test_events_become_their_chunks_in_order() -> None:
    found = chunks(framed(EVENTS, Done("Checking It is 21.", "mock:m", {"tokens": 7}, "c")))
    kinds = [c if isinstance(c, str) else c["type"] for c in found]
    assert kinds == [
        "start",
        "start-step",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "tool-input-start",
        "tool-input-available",
        "tool-input-start",
        "tool-input-error",
        "finish-step",
        "tool-output-available",
        "tool-output-error",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
        "[DONE]",
    ]
    ids = [c["id"] for c in found if isinstance(c, dict) and c["type"].startswith(("text-", "reasoning-"))]
    assert ids == ["reasoning-1"] * 4 + ["text-2"] * 4 + ["text-3"] * 4
    assert found[11]["input"] == {"city": "Paris"} and found[13]["input"] == "{not json"
    assert found[15] == {"type": "tool-output-available", "toolCallId": "call_0", "output": {"temp": 21}}
    assert found[16] == {"type": "tool-output-error", "toolCallId": "call_1", "errorText": "bad JSON"}
    assert found[-2]["finishReason"] == "stop"


def kept(items: list[TurnEvent | list[str]], outcome: Outcome) -> list[bytes]:
    """The kept frames of a resumable stream (with `id:` lines), one batch per item, as the hub keeps them."""
    batches: list[bytes] = []
    next_id = 1
    for item in items:
        if isinstance(item, list):
            batches.append(token_frames_with_ids(item, next_id))
            next_id += len(item)
    batches.append(with_id(outcome_frame(outcome, None), next_id))
    return batches


@pytest.mark.parametrize("split", [1, 2, 100])
def test_kept_frames_reframed_equal_the_direct_stream(split: int) -> None:
    items: list[TurnEvent | list[str]] = [["Hi", " "], ["the\u2028re"], ["!"]]
    outcome = Done("Hi the\u2028re!", "mock:gpt-4.1", {"tokens": 4}, "c1")
    batches = kept(items, outcome)
    reframe = UIReframer("m1")
    read = b"".join(reframe(b"".join(batches[i : i + split])) for i in range(0, len(batches), split))
    assert read == framed(items, outcome)
    assert reframe(b"more") == b""  # nothing after the end


def test_a_kept_error_reframed_keeps_its_code_and_request_id() -> None:
    reframe = UIReframer(None)
    found = chunks(reframe(with_id(error_frame("cut", "interrupted", "req-9"), 3)))
    assert found[0] == {"type": "start"} and found[-1] == "[DONE]"
    assert found[-2] == {"type": "error", "errorText": "cut", "code": "interrupted", "requestId": "req-9"}


def test_kept_event_frames_reframed_as_their_chunks() -> None:
    frames = (
        b'event: reasoning\ndata: {"type":"reasoning","step":0,"delta":"hm"}\nid: 1\n\n'
        b'event: tool_call\ndata: {"type":"tool_call","step":0,"id":"c0","name":"t","args":{"a":1}}\nid: 2\n\n'
        b'event: step\ndata: {"type":"step","index":0,"finishReason":"tool-calls","usage":{"tokens":1}}\nid: 3\n\n'
        b'event: tool_result\ndata: {"type":"tool_result","step":0,"id":"c0","name":"t","output":5,"isError":false}'
        b"\nid: 4\n\n"
    )
    found = chunks(UIReframer("m")(frames))
    assert [c["type"] for c in found] == [
        "start",
        "start-step",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "tool-input-start",
        "tool-input-available",
        "finish-step",
        "tool-output-available",
    ]


@pytest.mark.node
def test_the_sdk_reads_every_event_chunk_into_its_message() -> None:
    text = framed(EVENTS, Done("Checking It is 21.", "mock:m", {"tokens": 7}, "c")).decode()
    (result,) = run_node(
        AI_SDK, "ui_client.mjs", "http://unused", json.dumps([{"op": "bytes", "user": "u", "text": text}])
    )
    assert result["rejected"] == [] and "error" not in result, result
    parts = result["message"]["parts"]
    assert [p["type"] for p in parts] == [
        "step-start",
        "reasoning",
        "text",
        "tool-get_weather",
        "tool-broken",
        "step-start",
        "text",
    ]
    assert parts[1]["text"] == "Let me think." and parts[2]["text"] == "Checking "
    assert parts[3]["state"] == "output-available" and parts[3]["output"] == {"temp": 21}
    assert parts[4]["state"] == "output-error" and parts[4]["errorText"] == "bad JSON"
    assert parts[6]["text"] == "It is 21." and result["message"]["id"] == "m1"
