"""Tools with Stop, a client gone and resume: every call answered (`cancelled` when cut), the events replayed."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from lean_chat import create_app
from tests.support.frames import Frame, check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.tools import SlowTool, add, get_weather, tool_body

Serve = Callable[..., httpx.Client]


class Reader(threading.Thread):
    """A stream read in a thread until it ends."""

    def __init__(self, http: httpx.Client, method: str, url: str, **options: Any) -> None:
        super().__init__(daemon=True)
        self.http, self.method, self.url, self.options = http, method, url, options
        self.data = b""
        self.stream_id: str | None = None
        self.start()

    def run(self) -> None:
        with self.http.stream(self.method, self.url, **self.options) as response:
            self.stream_id = response.headers.get("x-stream-id")
            for chunk in response.iter_bytes():
                self.data += chunk

    @property
    def frames(self) -> list[Frame]:
        """The frames read so far."""
        return parse_frames(self.data)


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll until `check()` holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def last_assistant(http: httpx.Client, user: str) -> dict[str, Any] | None:
    """The user's last saved assistant message, if any."""
    messages = http.get("/chat/history", params={"userId": user}).json()["messages"]
    found = [m for m in messages if m["role"] == "assistant"]
    return found[-1] if found else None


def assert_cancelled_transcript(message: dict[str, Any]) -> None:
    """The reply cut mid-tool: the quick call answered, the slow one answered `cancelled`; no step-1 text."""
    parts = message["meta"]["parts"]
    assert [p["type"] for p in parts] == ["tool_call", "tool_call", "tool_result", "tool_result"]
    results = {p["id"]: p for p in parts if p["type"] == "tool_result"}
    assert results["call_0"]["output"] == 3 and results["call_0"]["isError"] is False
    assert results["call_1"]["error"]["code"] == "cancelled" and results["call_1"]["isError"] is True
    assert message["meta"]["partial"] is True


CALLS = [{"name": "add", "args": {"a": 1, "b": 2}}, {"name": "slow", "args": {"seconds": 30}}]


def test_stop_mid_tool_cancels_it_and_saves_every_call_answered(
    live_server: Callable[..., LiveServer], sqlite_path: str
) -> None:
    slow = SlowTool()
    server = live_server(create_app(sqlite_path=sqlite_path, tools=[add, slow.function()]))
    with httpx.Client(base_url=server.url, timeout=20) as http:
        payload = tool_body("stopper", "go", CALLS, ["tools"], conversationId="c1")
        reader = Reader(http, "POST", "/chat/stream", json=payload)
        assert slow.started.wait(10) and slow.saw_context.is_set()
        answer = http.post("/chat/stop", json={"userId": "stopper", "conversationId": "c1"})
        assert answer.json() == {"ok": True, "stopped": True}
        reader.join(10)
        done = check_grammar(reader.frames, opted_in=True)
        assert done.data["stopped"] is True
        assert slow.cancelled.wait(5)
        parts = done.data["message"]["parts"]
        assert parts[-1] == {
            "type": "tool_result",
            "id": "call_1",
            "name": "slow",
            "error": {"code": "cancelled", "message": "The turn was stopped before the tool call finished."},
            "isError": True,
        }
        page = http.get("/chat/conversation", params={"userId": "stopper", "conversationId": "c1"}).json()
        message = page["messages"][-1]
        assert message["meta"]["stopped"] is True
        assert_cancelled_transcript(message)
        # The next turn into the conversation is accepted, its context a valid transcript.
        follow = http.post("/chat/stream", json=tool_body("stopper", "again", [], ["tools"], conversationId="c1"))
        assert check_grammar(parse_frames(follow.content), opted_in=True).event == "done"


def test_a_client_gone_mid_tool_leaves_a_valid_partial_transcript(
    live_server: Callable[..., LiveServer], sqlite_path: str
) -> None:
    slow = SlowTool()
    server = live_server(create_app(sqlite_path=sqlite_path, tools=[add, slow.function()]))
    body = json.dumps(tool_body("leaver", "go", CALLS)).encode()
    head = (
        f"POST /chat/stream HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        assert slow.started.wait(10)
    # The client is gone mid-tool: the tool is cancelled, the reply saved partial with every call answered.
    with httpx.Client(base_url=server.url, timeout=20) as http:
        wait_until(lambda: last_assistant(http, "leaver") is not None)
        assert slow.cancelled.wait(5)
        message = last_assistant(http, "leaver")
        assert message is not None and "stopped" not in message["meta"]
        assert_cancelled_transcript(message)


def test_opted_in_events_are_replayed_on_resume_with_ids(serve: Serve) -> None:
    http = serve(tools=[get_weather, add])
    calls = [{"name": "get_weather", "args": {"city": "Kyiv"}}, {"name": "add", "args": {"a": 2, "b": 2}}]
    payload = tool_body("resumer", "go", calls, ["reasoning", "tools"], "Reason.", resume=True)
    live = http.post("/chat/stream", json=payload)
    frames = parse_frames(live.content)
    done = check_grammar(frames, opted_in=True)
    assert done.event == "done"
    ids = [int(line.split(": ")[1]) for f in frames for line in f.raw.split("\n") if line.startswith("id: ")]
    assert ids == list(range(1, len(frames) + 1))  # every frame, events included, has its id
    stream_id = live.headers["x-stream-id"]
    replay = http.get(f"/chat/stream/{stream_id}", params={"userId": "resumer", "lastEventId": "0"})
    assert replay.content == live.content
    after = http.get(f"/chat/stream/{stream_id}", params={"userId": "resumer", "lastEventId": "3"})
    assert after.content == b"\n\n".join(live.content.split(b"\n\n")[3:])


def test_stop_mid_tool_of_a_resumable_stream(serve: Serve) -> None:
    slow = SlowTool()
    http = serve(tools=[add, slow.function()])
    payload = tool_body("rstop", "go", CALLS, ["tools"], resume=True)
    reader = Reader(http, "POST", "/chat/stream", json=payload)
    assert slow.started.wait(10)
    wait_until(lambda: reader.stream_id is not None)
    answer = http.post("/chat/stop", json={"userId": "rstop", "streamId": reader.stream_id})
    assert answer.json() == {"ok": True, "stopped": True}
    reader.join(10)
    done = check_grammar(reader.frames, opted_in=True)
    assert done.data["stopped"] is True and slow.cancelled.wait(5)
    message = last_assistant(http, "rstop")
    assert message is not None
    assert_cancelled_transcript(message)


def test_with_resume_a_client_gone_mid_tool_finds_the_loop_run_to_its_end(serve: Serve) -> None:
    slow = SlowTool()
    http = serve(tools=[add, slow.function()])
    calls = [{"name": "add", "args": {"a": 1, "b": 2}}, {"name": "slow", "args": {"seconds": 0.5}}]
    payload = tool_body("rgone", "go", calls, ["tools"], resume=True)
    with http.stream("POST", "/chat/stream", json=payload) as response:
        stream_id = response.headers["x-stream-id"]
        assert slow.started.wait(10)
    # The client left mid-tool; the tool finishes and the next step streams for whoever resumes.
    replay = http.get(f"/chat/stream/{stream_id}", params={"userId": "rgone", "lastEventId": "0"})
    frames = parse_frames(replay.content)
    done = check_grammar(frames, opted_in=True)
    assert not slow.cancelled.is_set()
    results = {f.data["id"]: f.data for f in frames if f.event == "tool_result"}
    assert results["call_1"]["output"] == "slept" and [s["index"] for s in done.data["steps"]] == [0, 1]
    message = last_assistant(http, "rgone")
    assert message is not None and "partial" not in message["meta"]
