"""The streaming response: heartbeats after silence; a client that leaves stops the turn, its partial reply saved."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lean_chat import create_app
from lean_chat.frames import PING_FRAME
from lean_chat.http.chat_params import mock_knobs, turn_request
from lean_chat.http.schema import ChatMessage, ChatRequest
from lean_chat.providers.mock import build_reply
from lean_chat.store.sqlite import SQLiteStore
from lean_chat.turn.chat import ChatService
from lean_chat.turn.shutdown import SHUTDOWN_CODE, SHUTDOWN_MESSAGE
from lean_chat.turn.streaming import End, TurnStream
from tests.support.apps import asgi_client, http_scope, json_headers, stream_body
from tests.support.frames import parse_frames
from tests.support.live_server import LiveServer, first_tokens
from tests.support.sqlite_rows import stored_rows

PARTIAL = {"partial": True}


class Recorder:
    """Wraps an ASGI app to record what it sends after the server told it the client disconnected."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.disconnected = threading.Event()
        self.finished = threading.Event()
        self.sent_after_disconnect: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass everything through, noting the disconnect and later sends."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watched_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
            return message

        async def watched_send(message: Message) -> None:
            if self.disconnected.is_set():
                self.sent_after_disconnect.append(message)
            await send(message)

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            self.finished.set()


def read_tokens_then_leave(url: str, body: dict[str, Any], wanted: int) -> str:
    """Stream, read at least `wanted` token frames, then close the connection; return the text received."""
    received = first_tokens(url, body, wanted)
    complete = received[: received.rfind(b"\n\n") + 2]
    return "".join(f.data["token"] for f in parse_frames(complete) if f.event == "token")


def test_disconnect_over_uvicorn_stops_the_turn_and_saves_the_partial_reply(
    live_server: Callable[..., LiveServer], sqlite_path: str
) -> None:
    recorder = Recorder(create_app(sqlite_path=sqlite_path, heartbeat_seconds=0.05))
    server = live_server(recorder)
    body = stream_body("gone", "a long answer please", tokenDelayMs=20, targetChars=4000)
    seen = read_tokens_then_leave(server.url, body, wanted=8)
    assert recorder.finished.wait(5), "the turn kept running after the client left"
    assert recorder.disconnected.is_set()
    assert recorder.sent_after_disconnect == []
    rows = stored_rows(sqlite_path, "default:gone")
    assert len(rows) == 2
    assert rows[0] == ("user", "a long answer please", None)
    role, content, meta = rows[1]
    full = build_reply("a long answer please", "mock", mock_knobs({"targetChars": 4000}))
    assert role == "assistant" and meta == PARTIAL
    assert content.startswith(seen) and full.startswith(content)
    assert len(content) < len(full) // 2
    # Nothing more is produced or written later.
    time.sleep(0.2)
    assert stored_rows(sqlite_path, "default:gone") == rows
    assert recorder.sent_after_disconnect == []


def test_partial_reply_shows_in_history_and_next_turn_goes_on(
    live_server: Callable[..., LiveServer], sqlite_path: str
) -> None:
    recorder = Recorder(create_app(sqlite_path=sqlite_path))
    server = live_server(recorder)
    read_tokens_then_leave(server.url, stream_body("h", "first", tokenDelayMs=20, targetChars=2000), wanted=4)
    assert recorder.finished.wait(5)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        messages = http.get("/chat/history", params={"userId": "h"}).json()["messages"]
        assert [m["meta"] for m in messages] == [None, PARTIAL]
        http.post("/chat/stream", json=stream_body("h", "second"))
        messages = http.get("/chat/history", params={"userId": "h"}).json()["messages"]
    assert [(m["role"], m["meta"]) for m in messages] == [
        ("user", None),
        ("assistant", PARTIAL),
        ("user", None),
        ("assistant", None),
    ]


async def run_asgi(app: Any, body: bytes, on_send: Callable[[Message, list[Message]], Any]) -> list[Message]:
    """Run one request straight through the app; `on_send` may block; `receive` reports a disconnect when told."""
    sent: list[Message] = []
    leave = asyncio.Event()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if await on_send(message, sent):
            leave.set()

    await asyncio.wait_for(app(http_scope(headers=json_headers(body)), receive, send), 5)
    return sent


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sqlite", "memory"])
async def test_in_process_disconnect_sends_nothing_more(sqlite_path: str, mode: str) -> None:
    app = create_app(sqlite_path=sqlite_path if mode == "sqlite" else "")
    body = msgspec.json.encode(stream_body("ip", "tell me", tokenDelayMs=5, targetChars=3000))
    disconnect_at: list[int] = []

    async def on_send(message: Message, sent: list[Message]) -> bool:
        frames = sum(m.get("body", b"").count(b"event: token") for m in sent)
        if frames >= 10 and not disconnect_at:
            disconnect_at.append(len(sent))
            return True
        return False

    async with app.router.lifespan_context(app):
        sent = await run_asgi(app, body, on_send)
        # The disconnect is seen at the next scheduling point: at most the write in flight follows it.
        assert len(sent) <= disconnect_at[0] + 1
        assert not any(b"event: done" in m.get("body", b"") for m in sent)
        async with asgi_client(app) as http:
            messages = (await http.get("/chat/history", params={"userId": "ip"})).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["meta"] == PARTIAL
    tokens = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    shown = "".join(f.data["token"] for f in parse_frames(tokens) if f.event == "token")
    assert messages[1]["content"].startswith(shown)
    assert build_reply("tell me", "mock", mock_knobs({"targetChars": 3000})).startswith(messages[1]["content"])


@pytest.mark.anyio
async def test_client_that_takes_no_data_is_dropped_after_the_send_timeout(sqlite_path: str) -> None:
    app = create_app(sqlite_path=sqlite_path, send_timeout_seconds=0.2, heartbeat_seconds=0)
    body = msgspec.json.encode(stream_body("stuck", "hello", targetChars=3000))
    never = asyncio.Event()

    async def on_send(message: Message, sent: list[Message]) -> bool:
        if sum(m.get("body", b"").count(b"event: token") for m in sent) > 0:
            await never.wait()  # the client stops reading: this write never completes
        return False

    async with app.router.lifespan_context(app):
        sent = await run_asgi(app, body, on_send)  # returns (within run_asgi's 5 s bound) instead of hanging
        async with asgi_client(app) as http:
            messages = (await http.get("/chat/history", params={"userId": "stuck"})).json()["messages"]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert messages[1]["meta"] == PARTIAL
    assert messages[1]["content"] == "".join(f.data["token"] for f in parse_frames(sent[1]["body"]))


@pytest.mark.anyio
async def test_disconnect_while_the_reply_is_being_saved_keeps_it_and_the_store_usable(sqlite_path: str) -> None:
    app = create_app(sqlite_path=sqlite_path)
    body = msgspec.json.encode(stream_body("late", "short one", targetChars=250))
    blocker = sqlite3.connect(sqlite_path, isolation_level=None, check_same_thread=False)

    async def on_send(message: Message, sent: list[Message]) -> bool:
        if b"event: token" in message.get("body", b""):
            # Hold the database's write lock, so the reply's save waits; the client leaves meanwhile.
            blocker.execute("BEGIN IMMEDIATE")
            asyncio.get_running_loop().call_later(0.3, blocker.execute, "COMMIT")
            return True
        return False

    async with app.router.lifespan_context(app):
        await run_asgi(app, body, on_send)
        async with asgi_client(app) as http:
            await asyncio.sleep(0.5)
            messages = (await http.get("/chat/history", params={"userId": "late"})).json()["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant"]
            assert messages[1]["content"] == build_reply("short one", "mock", mock_knobs({"targetChars": 250}))
            # Later turns still write.
            again = await http.post("/chat/stream", json=stream_body("late", "more"))
            assert b"event: done" in again.content
            assert len((await http.get("/chat/history", params={"userId": "late"})).json()["messages"]) == 4
    blocker.close()


@pytest.mark.anyio
async def test_stuck_write_behind_a_ping_is_still_timed_out(sqlite_path: str) -> None:
    app = create_app(sqlite_path=sqlite_path, send_timeout_seconds=0.3, heartbeat_seconds=0.05)
    body = msgspec.json.encode(stream_body("behind", "hello", tokenDelayMs=100, targetChars=250))
    never = asyncio.Event()
    pinged = False

    async def on_send(message: Message, sent: list[Message]) -> bool:
        nonlocal pinged
        chunk = message.get("body", b"")
        if chunk == b": ping\n" and not pinged:
            pinged = True
            await asyncio.sleep(0.15)  # a slow write that does complete
        elif b"event: token" in chunk and pinged:
            await never.wait()  # meanwhile the client stops reading for good
        return False

    async with app.router.lifespan_context(app):
        sent = await run_asgi(app, body, on_send)
        async with asgi_client(app) as http:
            messages = (await http.get("/chat/history", params={"userId": "behind"})).json()["messages"]
    assert pinged
    assert not any(b"event: done" in m.get("body", b"") for m in sent)
    assert messages[-1]["meta"] == PARTIAL


def first_bytes(url: str, user: str, token_delay_ms: int, tokens: int) -> bytes:
    """The stream's bytes up to `tokens` token frames, read over a real connection (then the client leaves)."""
    return first_tokens(url, stream_body(user, "slowly", tokenDelayMs=token_delay_ms, targetChars=250), tokens)


def test_ping_frames_fill_silences(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    server = live_server(create_app(sqlite_path=sqlite_path, heartbeat_seconds=0.05))
    received = first_bytes(server.url, "hb", token_delay_ms=300, tokens=3)
    assert received.count(b": ping\n") >= 3
    # Each ping is a whole comment line between frames, never followed by a blank line: it ends no event.
    assert b": ping\n\n" not in received
    between = received.split(b"\n\n")
    assert all(re.fullmatch(rb"(: ping\n)*event: token\ndata: [^\n]*", part) for part in between[:-1]), between
    frames = parse_frames(received[: received.rfind(b"\n\n") + 2])
    assert all(f.event == "token" for f in frames)
    assert [f.data["token"] for f in frames][:3] == ["Mock", " ", "reply"]


def test_no_ping_while_tokens_flow(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    server = live_server(create_app(sqlite_path=sqlite_path, heartbeat_seconds=0.5))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        text = http.post("/chat/stream", json=stream_body("busy", "go", tokenDelayMs=20, targetChars=250)).text
    assert ": ping" not in text
    assert parse_frames(text)[-1].event == "done"


def test_zero_turns_heartbeats_off(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    server = live_server(create_app(sqlite_path=sqlite_path, heartbeat_seconds=0))
    received = first_bytes(server.url, "quiet", token_delay_ms=150, tokens=4)
    assert b": ping" not in received
    assert received.count(b"event: token") >= 4


class Wire:
    """The client's side of one `TurnStream` call: what was taken, writes that hang on demand, a disconnect."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.sent_after_gone: list[Message] = []
        self.pings_after_gone = 0
        self.hang_on: bytes | None = None  # a write whose body holds these bytes is never taken

    async def receive(self) -> Message:
        """Wait for the disconnect."""
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Take a write, or hang (a client that stopped reading)."""
        if self.gone.is_set():
            # A heartbeat that was under way in the same turn of the loop as the disconnect may still come.
            self.pings_after_gone += message.get("body") == PING_FRAME
            if message.get("body") != PING_FRAME or self.pings_after_gone > 1:
                self.sent_after_gone.append(message)
        if self.hang_on is not None and self.hang_on in message.get("body", b""):
            await asyncio.Event().wait()
        self.sent.append(message)

    def frames(self) -> list[Any]:
        """The event frames taken so far (heartbeats left out)."""
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return [f for f in parse_frames(body) if f.event is not None]


class StreamRig:
    """One real turn (SQLite store; the mock, or an unconfigured provider) streamed to a `Wire` as a task."""

    def __init__(self, path: str, store: SQLiteStore, stream: TurnStream, wire: Wire, task: asyncio.Task[None]) -> None:
        self.path = path
        self.store = store
        self.stream = stream
        self.wire = wire
        self.task = task
        self.blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def hold_store(self) -> None:
        """Take the database's write lock: saves wait for `release_store`."""
        self.blocker.execute("BEGIN IMMEDIATE")

    def release_store(self) -> None:
        """Let the saves go on."""
        if self.blocker.in_transaction:
            self.blocker.execute("COMMIT")

    def tokens(self) -> str:
        """The text of the token frames taken."""
        return "".join(f.data["token"] for f in self.wire.frames() if f.event == "token")

    def rows(self) -> list[tuple[str, str, Any]]:
        """The conversation as stored."""
        return stored_rows(self.path, "pairs-c")


@contextlib.asynccontextmanager
async def stream_rig(path: str, *, model: str | None = None, chars: int = 3000) -> AsyncIterator[StreamRig]:
    """A turn (slow mock, or with `model` one that fails at once) started as a task; all closed after."""
    store = SQLiteStore(path)
    await store.open()
    params: dict[str, Any] = {"conversationId": "pairs-c", "mock": {"tokenDelayMs": 20, "targetChars": chars}}
    if model is not None:
        params["model"] = model
    asked = turn_request(ChatRequest("pairs", [ChatMessage("user", "tell me")], params), None)
    turn = await ChatService(store, {}).open_turn(asked)
    stream = TurnStream(turn, heartbeat_seconds=0.02, send_timeout_seconds=0.2)
    wire = Wire()
    task = asyncio.create_task(stream(http_scope(), wire.receive, wire.send))
    rig = StreamRig(path, store, stream, wire, task)
    try:
        yield rig
    finally:
        rig.release_store()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        rig.blocker.close()
        await store.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (up to 5 s) for `condition`."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never met")


def cause(rig: StreamRig, name: str) -> None:
    """Bring about one end cause: the client leaves, stops reading (any write hangs), or the server shuts down."""
    if name == "client_gone":
        rig.wire.gone.set()
    elif name == "stalled":
        rig.wire.hang_on = b""
    else:
        rig.stream.stop(SHUTDOWN_MESSAGE, SHUTDOWN_CODE)


CAUSES = ["client_gone", "stalled", "stopped"]


@pytest.mark.anyio
@pytest.mark.parametrize(("first", "second"), [(a, b) for a in CAUSES for b in CAUSES if a != b])
async def test_second_cancellation_escapes_the_stream(sqlite_path: str, first: str, second: str) -> None:
    # A stall or shutdown, then a disconnect while the partial reply was being saved: the second cancellation once
    # escaped the stream. Now the first cause decides how the stream ends, and the second changes nothing.
    async with stream_rig(sqlite_path) as rig:
        await until(lambda: len(rig.tokens()) > 10)
        rig.hold_store()
        cause(rig, first)
        await until(lambda: rig.stream.end is not None)
        assert rig.stream.end is End(first)
        await asyncio.sleep(0.1)  # the partial reply's save waits for the store
        cause(rig, second)
        await asyncio.sleep(0.3)  # longer than the send timeout
        rig.release_store()
        await asyncio.wait_for(rig.task, 5)  # ends, and raises nothing
        assert rig.stream.end is End(first)
        shown = rig.tokens()
        [user, reply] = rig.rows()
        assert reply[0] == "assistant" and reply[2] == PARTIAL and reply[1].startswith(shown)
        # No frame ends the stream: the client left or stopped reading before the shutdown's `error` could be taken.
        assert rig.wire.frames()[-1].event == "token"
        assert rig.wire.sent_after_gone == []


@pytest.mark.anyio
async def test_shutdown_alone_ends_with_its_error_frame(sqlite_path: str) -> None:
    async with stream_rig(sqlite_path) as rig:
        await until(lambda: len(rig.tokens()) > 10)
        cause(rig, "stopped")
        await asyncio.wait_for(rig.task, 5)
        last = rig.wire.frames()[-1]
        assert last.event == "error" and last.data["error"] == {"message": SHUTDOWN_MESSAGE, "code": SHUTDOWN_CODE}
        assert rig.rows()[-1] == ("assistant", rig.tokens(), PARTIAL)


@pytest.mark.anyio
@pytest.mark.parametrize("second", CAUSES)
async def test_cause_while_the_complete_reply_is_saved_changes_nothing(sqlite_path: str, second: str) -> None:
    async with stream_rig(sqlite_path, chars=250) as rig:
        rig.hold_store()
        await until(lambda: rig.stream.end is not None)
        assert rig.stream.end is End.DONE
        await asyncio.sleep(0.1)  # the reply's save waits for the store
        cause(rig, second)
        await asyncio.sleep(0.3)
        rig.release_store()
        await asyncio.wait_for(rig.task, 5)
        assert rig.stream.end is End.DONE
        full = build_reply("tell me", "mock", mock_knobs({"targetChars": 250}))
        assert rig.rows()[-1] == ("assistant", full, None)
        assert rig.tokens() == full
        # The `done` frame is written unless the client left (or stops reading: then the write is cut).
        assert (rig.wire.frames()[-1].event == "done") == (second == "stopped")
        assert rig.wire.sent_after_gone == []


@pytest.mark.anyio
@pytest.mark.parametrize("second", CAUSES)
async def test_cause_while_the_error_frame_is_written_changes_nothing(sqlite_path: str, second: str) -> None:
    async with stream_rig(sqlite_path, model="claude-3-5-sonnet") as rig:  # no Anthropic key: fails at once
        rig.wire.hang_on = b"event: error"  # the client does not take the last frame yet
        await until(lambda: rig.stream.end is not None)
        assert rig.stream.end is End.ERROR
        await asyncio.sleep(0.05)
        cause(rig, second)
        # Whatever came second, the write the client never takes is cut after the send timeout.
        await asyncio.wait_for(rig.task, 5)
        assert rig.stream.end is End.ERROR
        assert rig.wire.frames() == []
        assert rig.rows() == [("user", "tell me", None)]


@pytest.mark.anyio
@pytest.mark.parametrize("first", [None, "stopped", "stalled"])
async def test_cancellation_from_outside_is_passed_on(sqlite_path: str, first: str | None) -> None:
    # The server cancels the request's task (alone, or while a cause ends the stream): the stream does not swallow
    # it, and the partial reply is still saved.
    async with stream_rig(sqlite_path) as rig:
        await until(lambda: len(rig.tokens()) > 10)
        rig.hold_store()
        if first is not None:
            cause(rig, first)
            await until(lambda: rig.stream.end is not None)
            await asyncio.sleep(0.1)  # the partial reply's save waits for the store
        rig.task.cancel()
        asyncio.get_running_loop().call_later(0.2, rig.release_store)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(rig.task, 5)
        await until(lambda: len(rig.rows()) == 2)
        assert rig.rows()[-1] == ("assistant", rig.rows()[-1][1], PARTIAL)
        assert rig.rows()[-1][1].startswith(rig.tokens())


@pytest.mark.anyio
async def test_reply_that_cannot_be_saved_ends_as_an_error(sqlite_path: str) -> None:
    async with stream_rig(sqlite_path, chars=600) as rig:
        await until(lambda: len(rig.tokens()) > 10)
        await rig.store.delete("pairs", "pairs-c")
        await asyncio.wait_for(rig.task, 5)
        assert rig.stream.end is End.ERROR
        assert rig.wire.frames()[-1].data["error"]["code"] == "conversation_deleted"
