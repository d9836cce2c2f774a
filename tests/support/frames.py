"""Reading lean_chat's SSE wire in tests: frames split on a blank line, as browser clients do."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Frame:
    """One SSE frame: its event name (None for comments alone), decoded JSON data, and comment lines (heartbeats)."""

    event: str | None
    data: Any
    raw: str
    comments: list[str] = field(default_factory=list)


def parse_frames(body: str | bytes) -> list[Frame]:
    """All frames of a complete SSE body."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    frames: list[Frame] = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event: str | None = None
        data_lines: list[str] = []
        comments: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data_lines.append(line[len("data:") :].lstrip(" "))
        data = json.loads("\n".join(data_lines)) if data_lines else None
        frames.append(Frame(event, data, block, comments))
    return frames


OPT_IN_EVENTS = ("reasoning", "tool_call", "tool_result", "step")


def check_grammar(frames: list[Frame], resumed: bool = False, opted_in: bool = False) -> Frame:
    """Assert the stream grammar (tokens, then exactly one done or error, nothing after) and return the last.

    `resumed`: the frames follow a `Last-Event-ID`, so their tokens are the end of the reply, not all of it.
    `opted_in`: the client asked for `params.events`, so the opt-in events may come between the tokens (each one's
    `type` equal to its `event:` name).
    """
    events = [f for f in frames if f.event is not None]
    assert events, "no events in stream"
    last = events[-1]
    assert last.event in ("done", "error"), f"stream ended with {last.event!r}"
    allowed = ("token", *OPT_IN_EVENTS) if opted_in else ("token",)
    assert all(f.event in allowed and f.data["type"] == f.event for f in events[:-1]), [f.event for f in events]
    if last.event == "done":
        tokens = "".join(f.data["token"] for f in events[:-1] if f.event == "token")
        content = last.data["message"]["content"]
        assert content.endswith(tokens) if resumed else tokens == content
    return last
