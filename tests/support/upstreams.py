"""Fake upstream model providers (OpenAI, Anthropic, Gemini) that speak each provider's real streaming format.

Each fake is a small ASGI app: serve it with the `live_server` fixture (real uvicorn on loopback), or hand
`fake.transport()` to an `httpx.AsyncClient` to control every network read byte by byte. Tests script the
replies (`Reply`: tokens, usage, status codes and headers such as Retry-After, mid-stream error events, a
stall before the first byte, a clean early end or a dropped connection, CRLF line ends, writes cut at any
byte offset) and read back what the fake received (`fake.received`: method, path, query, headers, JSON
body and client port of every attempt), how many attempts and TCP connections there were, and when a
client went away mid-stream.

Usage (pytest, end to end through lean_chat, both under real uvicorn):

    import httpx
    from lean_chat import create_app
    from tests.support.upstreams import FakeOpenAI, Reply
    from tests.support.frames import parse_frames

    def test_tokens_reach_the_client(live_server):
        fake = FakeOpenAI(Reply(status=429, headers={"retry-after": "0"}), Reply(tokens=["Hi", " there"]))
        fake.url = live_server(fake).url                       # serve the fake on a loopback port
        lean = live_server(create_app(sqlite_path="", **fake.options()))  # key + base URL of the fake
        body = {"userId": "u", "messages": [{"role": "user", "content": "hi"}], "params": {"model": "gpt-4.1"}}
        frames = parse_frames(httpx.post(f"{lean.url}/chat/stream", json=body).content)
        assert [f.data["token"] for f in frames if f.event == "token"] == ["Hi", " there"]
        assert fake.attempts == 2 and fake.received[-1].body["stream"] is True

Byte-level reads without a server: `httpx.AsyncClient(transport=fake.transport())`, with
`Reply(cuts=[17])` (one read cut at byte 17) or `Reply(chunk_size=1)` (one byte per read).
`fake.env()` gives the environment variables instead (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, ...).

Tools and reasoning: `Reply(reasoning=[...], calls=[Call("get_weather", {"city": "Paris"})])` streams reasoning,
the text, then tool calls in the provider's own format (OpenAI `delta.tool_calls` fragments and
`reasoning_content`; Anthropic signed `thinking` and `tool_use` blocks; Gemini `thought` parts and whole
`functionCall` parts with a `thoughtSignature`); faults are knobs: arguments as a string cut mid-JSON, `Call(id=None)`,
any name, `end_after`/`drop_after` counting every event, `call_index`, `signed=False`, `redacted`, `late_signature`.
Before answering, a fake checks the request as the real API would (`transcript_checks`: every call answered,
signatures present and unmodified, tools and reasoning knobs well formed) and answers 400 in the provider's error
format when it would refuse it; `fake.refusals` lists those messages (`fake.validate = False` turns it off).

`fake.queue(*replies)` scripts the next attempts in order (the last reply repeats), `fake.reset(*replies)`
also forgets what was received (for a fake shared between tests); `FakeAnthropic` and
`FakeGemini` work the same way (routing: a model starting `claude` / `gemini`). `refused_url()` is a
loopback URL where nothing listens. Every fake checks the provider's auth header against `API_KEY`
(or the `key` it was given) and answers 401 in the provider's error format when it does not match.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx

from tests.support.transcript_checks import (
    anthropic_problem,
    gemini_problem,
    gemini_signature,
    openai_problem,
    redacted_data,
    thinking_signature,
)

__all__ = [
    "API_KEY",
    "Call",
    "FakeAnthropic",
    "FakeGemini",
    "FakeOpenAI",
    "FakeUpstream",
    "Received",
    "Reply",
    "refused_url",
]

API_KEY = "sk-fake-7f3a9c0d2e-do-not-leak"


@dataclass
class Reply:
    """One scripted upstream answer; the defaults are a short successful stream with usage."""

    tokens: Sequence[str] = ("Hello", ",", " world", "!")
    input_tokens: int = 11
    output_tokens: int | None = None  # None: the number of tokens
    usage: bool = True  # report usage (OpenAI: only when the request asked for it)
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    error_message: str = "The server had an error while processing your request."
    error_type: str | None = None  # provider error type or code, e.g. insufficient_quota, overloaded_error
    fail_after: int | None = None  # after this many tokens send the provider's mid-stream error event
    end_after: int | None = None  # after this many tokens end the body cleanly, without the closing events
    drop_after: int | None = None  # after this many tokens cut the connection (no end of body)
    stall: float = 0.0  # seconds to wait before the response starts
    token_delay: float = 0.0  # seconds to wait after each write
    crlf: bool | None = None  # None: the provider's habit (Gemini uses CRLF, the others LF)
    chunk_size: int | None = None  # cut the body into writes of this many bytes
    cuts: Sequence[int] | None = None  # cut the body into writes at these byte offsets
    raw: Sequence[str] | None = None  # event blocks sent as they are, instead of the generated stream
    comment: bool = False  # start with an SSE comment line
    finish_reason: str | None = None  # None: the provider's normal one (stop, end_turn, STOP)
    refusal: bool = False  # OpenAI: the tokens arrive as `delta.refusal`
    usage_choices: str = "empty"  # OpenAI usage chunk: choices "empty" ([]), "null" or "missing"
    thoughts: Sequence[str] = ()  # Gemini: thought parts sent before the text
    cumulative: bool = False  # Gemini: every chunk repeats the whole text so far
    block_reason: str | None = None  # Gemini: the prompt is blocked (promptFeedback.blockReason)
    reasoning: Sequence[str] = ()  # reasoning deltas before the text (Anthropic: one signed thinking block)
    calls: Sequence[Call] = ()  # tool calls after the text (the finish reason becomes the provider's tool one)
    signed: bool = True  # Anthropic thinking and Gemini parts carry the fake's signature
    redacted: bool = False  # Anthropic: a redacted_thinking block first
    reasoning_field: str = "reasoning_content"  # OpenAI-compatible servers: or "reasoning" (Ollama, OpenRouter)
    call_index: str = "normal"  # OpenAI: "missing" (no `index`) or "reused" (every call at index 0)
    late_signature: bool = False  # Gemini: the text's thoughtSignature comes on a later empty-text part

    def output_count(self) -> int:
        """The output token count to report."""
        return len(self.tokens) if self.output_tokens is None else self.output_tokens


@dataclass
class Call:
    """One scripted tool call of a reply."""

    name: str
    args: Any = field(default_factory=dict)  # JSON-able arguments, or a string sent as it is (e.g. cut mid-JSON)
    id: str | None = ""  # "": the provider's habit (OpenAI and Anthropic make one, Gemini sends none); None: no id
    pieces: int = 3  # OpenAI and Anthropic: the arguments stream in this many fragments

    def arguments(self) -> str:
        """The arguments as the JSON text the model streams."""
        return self.args if isinstance(self.args, str) else json.dumps(self.args, separators=(",", ":"))

    def fragments(self) -> list[str]:
        """The arguments text cut into `pieces` fragments (at least one, maybe empty)."""
        text = self.arguments()
        size = -(-len(text) // max(self.pieces, 1)) or 1
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]

    def call_id(self, prefix: str, n: int) -> str | None:
        """The id to send for the n-th call of a reply (None: no id)."""
        if self.id == "":
            return f"{prefix}{n}"
        return self.id


@dataclass
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: Any
    client_port: int
    at: float
    sent_writes: int = 0
    disconnected_at: float | None = None


@dataclass
class _Plan:
    """What to answer: status, headers, body writes, and whether to cut the connection at the end."""

    status: int
    headers: list[tuple[str, str]]
    writes: list[bytes]
    drop: bool = False


class DropConnection(Exception):
    """Raised inside the fake to make uvicorn cut the connection mid-body."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a scripted drop as an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


_QUIET_DROPS = _QuietDrops()


def refused_url() -> str:
    """A loopback URL on a port where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}"


def _cut(body: bytes, reply: Reply) -> list[bytes]:
    """The body cut into writes by `cuts` or `chunk_size`."""
    if reply.cuts is not None:
        edges = [0, *sorted(c for c in reply.cuts if 0 < c < len(body)), len(body)]
        return [body[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]
    size = reply.chunk_size or len(body) or 1
    return [body[i : i + size] for i in range(0, len(body), size)]


def _data(payload: Any) -> str:
    """A `data:` event block carrying JSON."""
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


class FakeUpstream:
    """Base of the fakes: scripting, recording, the ASGI app and the MockTransport."""

    name: ClassVar[str] = ""
    prefix: ClassVar[str] = ""
    default_crlf: ClassVar[bool] = False
    invalid_type: ClassVar[str] = "invalid_request_error"  # the error type of a 400 for an invalid request

    def __init__(self, *replies: Reply, key: str = API_KEY) -> None:
        self.key = key
        self.url: str | None = None  # where the fake is served, once a test or fixture sets it
        self._replies: list[Reply] = list(replies) or [Reply()]
        self.received: list[Received] = []
        self.validate = True  # answer 400 to a request the real API would refuse
        self.refusals: list[str] = []  # the messages of those 400s
        self.disconnected = threading.Event()
        self._lock = threading.Lock()

    # Scripting and reading back.

    def queue(self, *replies: Reply) -> None:
        """Script the next attempts in order; the last reply repeats."""
        with self._lock:
            self._replies = list(replies) or [Reply()]

    def reset(self, *replies: Reply) -> None:
        """Forget what was received and script new replies (for a fake shared between tests)."""
        with self._lock:
            self._replies = list(replies) or [Reply()]
            self.received = []
            self.refusals = []
        self.validate = True
        self.disconnected.clear()

    def _next_reply(self) -> Reply:
        """The reply for this attempt."""
        with self._lock:
            return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]

    @property
    def attempts(self) -> int:
        """How many requests reached the fake."""
        return len(self.received)

    @property
    def connections(self) -> int:
        """How many distinct TCP connections carried those requests (by client port)."""
        return len({r.client_port for r in self.received})

    def base_url(self, server_url: str | None = None) -> str:
        """The provider base URL for a fake served at `server_url` (default: `self.url`)."""
        url = server_url or self.url
        if url is None:
            raise RuntimeError("serve the fake first (or pass its URL)")
        return url.rstrip("/") + self.prefix

    def options(self, server_url: str | None = None) -> dict[str, Any]:
        """`create_app` keyword options pointing this provider at the fake (key and base URL)."""
        return {f"{self.name}_api_key": self.key, f"{self.name}_base_url": self.base_url(server_url)}

    def env(self, server_url: str | None = None) -> dict[str, str]:
        """Environment variables pointing this provider at the fake (as the README documents)."""
        upper = self.name.upper()
        return {f"{upper}_API_KEY": self.key, f"{upper}_BASE_URL": self.base_url(server_url)}

    # Provider specifics (overridden).

    def route_ok(self, method: str, path: str) -> bool:
        """True for the provider's streaming endpoint."""
        raise NotImplementedError

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """True when the request carries the key the provider's way."""
        raise NotImplementedError

    def error_body(self, status: int, message: str, error_type: str | None) -> Any:
        """The provider's JSON error body."""
        raise NotImplementedError

    def problem(self, request: Any, path: str) -> str | None:
        """Why the real API would refuse this request (its transcript, tools or reasoning knob), or None."""
        return None

    def streamed_request(self, request: Any, path: str) -> Any:
        """The request as the stream's events read it (Gemini adds the model named in the path)."""
        return request

    def call_prefix(self, prefix: str) -> str:
        """A prefix for the tool call ids of this attempt's reply (ids stay unique across a fake's requests)."""
        return f"{prefix}{len(self.received)}_"

    def head(self, reply: Reply, request: Any) -> list[str]:
        """Event blocks before the first token."""
        return []

    def token_events(self, reply: Reply, request: Any) -> list[str]:
        """One event block per token."""
        raise NotImplementedError

    def tail(self, reply: Reply, request: Any) -> list[str]:
        """Event blocks after the last token (finish, usage, end marker)."""
        raise NotImplementedError

    def error_event(self, reply: Reply) -> list[str]:
        """The provider's mid-stream error event block(s)."""
        raise NotImplementedError

    # Planning an answer.

    def plan(self, reply: Reply, request: Any, headers: Mapping[str, str], method: str, path: str) -> _Plan:
        """The answer to one request."""
        if not self.route_ok(method, path):
            return self._json(404, self.error_body(404, "Not found.", "not_found"))
        if not self.authorized(headers):
            return self._json(401, self.error_body(401, "Invalid API key.", "authentication_error"))
        problem = self.problem(request, path) if self.validate else None
        if problem is not None:
            self.refusals.append(problem)
            return self._json(400, self.error_body(400, problem, self.invalid_type))
        if reply.status != 200:
            plan = self._json(reply.status, self.error_body(reply.status, reply.error_message, reply.error_type))
            plan.headers.extend(reply.headers.items())
            return plan
        request = self.streamed_request(request, path)
        blocks = [": keep-alive\n\n"] if reply.comment else []
        drop = False
        if reply.raw is not None:
            blocks.extend(reply.raw)
        else:
            tokens = self.token_events(reply, request)
            blocks.extend(self.head(reply, request))
            if reply.fail_after is not None:
                blocks.extend(tokens[: reply.fail_after])
                blocks.extend(self.error_event(reply))
            elif reply.end_after is not None:
                blocks.extend(tokens[: reply.end_after])
            elif reply.drop_after is not None:
                blocks.extend(tokens[: reply.drop_after])
                drop = True
            else:
                blocks.extend(tokens)
                blocks.extend(self.tail(reply, request))
        crlf = self.default_crlf if reply.crlf is None else reply.crlf
        if crlf:
            blocks = [b.replace("\r\n", "\n").replace("\n", "\r\n") for b in blocks]
        encoded = [b.encode() for b in blocks]
        writes = _cut(b"".join(encoded), reply) if (reply.cuts is not None or reply.chunk_size) else encoded
        headers_out = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        headers_out.extend(reply.headers.items())
        return _Plan(200, headers_out, writes, drop)

    @staticmethod
    def _json(status: int, payload: Any) -> _Plan:
        """A JSON answer."""
        return _Plan(status, [("content-type", "application/json")], [json.dumps(payload).encode()])

    def _record(
        self, method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes, port: int
    ) -> Received:
        """Note one request."""
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body
        received = Received(method, path, parse_qs(raw_query), raw_query, headers, parsed, port, time.monotonic())
        with self._lock:
            self.received.append(received)
        return received

    # The ASGI app (for uvicorn).

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one request in the provider's format."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client") or ("", 0)
        raw_query = scope.get("query_string", b"").decode("latin-1")
        received = self._record(scope["method"], scope["path"], raw_query, headers, b"".join(chunks), client[1])
        reply = self._next_reply()
        plan = self.plan(reply, received.body, headers, scope["method"], scope["path"])

        gone = asyncio.Event()
        finished = False

        async def watch() -> None:
            nonlocal finished
            message = await receive()
            if message["type"] == "http.disconnect" and not finished:
                received.disconnected_at = time.monotonic()
                gone.set()
                self.disconnected.set()

        watcher = asyncio.create_task(watch())
        try:
            if reply.stall and not await _wait(gone, reply.stall):
                return
            await send({"type": "http.response.start", "status": plan.status, "headers": _encode(plan.headers)})
            for write in plan.writes:
                if gone.is_set():
                    return
                await send({"type": "http.response.body", "body": write, "more_body": True})
                received.sent_writes += 1
                if reply.token_delay and not await _wait(gone, reply.token_delay):
                    return
            if plan.drop:
                await asyncio.sleep(0.01)
                logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)  # once is enough; adding is idempotent
                raise DropConnection("scripted connection drop")
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            finished = True
            watcher.cancel()

    # The MockTransport (for byte-level control of every read).

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering from this fake: each planned write arrives as one network read."""

        async def handle(request: httpx.Request) -> httpx.Response:
            body = await request.aread()
            headers = {k.lower(): v for k, v in request.headers.items()}
            query = request.url.query.decode("latin-1")
            received = self._record(request.method, request.url.path, query, headers, body, 0)
            reply = self._next_reply()
            plan = self.plan(reply, received.body, headers, request.method, request.url.path)
            if reply.stall:
                await asyncio.sleep(reply.stall)
            return httpx.Response(plan.status, headers=plan.headers, stream=_Reads(plan, reply, received))

        return httpx.MockTransport(handle)


async def _wait(gone: asyncio.Event, seconds: float) -> bool:
    """Sleep, returning False early when the client has gone away."""
    try:
        await asyncio.wait_for(gone.wait(), seconds)
    except TimeoutError:
        return True
    return False


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """ASGI header pairs."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class _Reads(httpx.AsyncByteStream):
    """A response body delivered as the plan's writes, one read each, optionally cut off at the end."""

    def __init__(self, plan: _Plan, reply: Reply, received: Received) -> None:
        self.plan = plan
        self.reply = reply
        self.received = received
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for write in self.plan.writes:
            if self.closed:
                return
            self.received.sent_writes += 1
            yield write
            if self.reply.token_delay:
                await asyncio.sleep(self.reply.token_delay)
        if self.plan.drop:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    async def aclose(self) -> None:
        if not self.closed and self.received.disconnected_at is None:
            self.received.disconnected_at = time.monotonic()
        self.closed = True


class FakeOpenAI(FakeUpstream):
    """OpenAI chat completions streaming (`POST /v1/chat/completions`), as vLLM and friends speak it too."""

    name = "openai"
    prefix = "/v1"

    def route_ok(self, method: str, path: str) -> bool:
        """The chat completions endpoint."""
        return method == "POST" and path == self.prefix + "/chat/completions"

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """A bearer token."""
        return headers.get("authorization") == f"Bearer {self.key}"

    def error_body(self, status: int, message: str, error_type: str | None) -> Any:
        """`{"error": {"message", "type", "code"}}`."""
        kind = error_type or ("rate_limit_exceeded" if status == 429 else "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    @staticmethod
    def _chunk(model: str, choices: Any, **extra: Any) -> dict[str, Any]:
        """One chat.completion.chunk."""
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model}
        if choices is not ...:
            chunk["choices"] = choices
        chunk.update(extra)
        return chunk

    def head(self, reply: Reply, request: Any) -> list[str]:
        """The role chunk."""
        model = str((request or {}).get("model", ""))
        delta = {"role": "assistant", "content": "", "refusal": None}
        return [_data(self._chunk(model, [{"index": 0, "delta": delta, "finish_reason": None}]))]

    def problem(self, request: Any, path: str) -> str | None:
        """The transcript (every tool call answered), the tools and `reasoning_effort`."""
        return openai_problem(request)

    def token_events(self, reply: Reply, request: Any) -> list[str]:
        """Reasoning deltas, one content (or refusal) delta per token, then the tool call fragments."""
        model = str((request or {}).get("model", ""))

        def delta(body: dict[str, Any]) -> str:
            return _data(self._chunk(model, [{"index": 0, "delta": body, "finish_reason": None}]))

        field_name = "refusal" if reply.refusal else "content"
        events = [delta({reply.reasoning_field: r}) for r in reply.reasoning]
        events.extend(delta({field_name: t}) for t in reply.tokens)
        prefix = self.call_prefix("call_")
        for n, call in enumerate(reply.calls):
            for k, piece in enumerate(call.fragments()):
                fragment: dict[str, Any] = {} if reply.call_index == "missing" else {"index": 0}
                if reply.call_index == "normal":
                    fragment["index"] = n
                function: dict[str, Any] = {"arguments": piece}
                if k == 0:
                    call_id = call.call_id(prefix, n)
                    if call_id is not None:
                        fragment["id"] = call_id
                    fragment["type"] = "function"
                    function = {"name": call.name, "arguments": piece}
                fragment["function"] = function
                events.append(delta({"tool_calls": [fragment]}))
        return events

    def tail(self, reply: Reply, request: Any) -> list[str]:
        """The finish chunk, the usage chunk (when asked for) and `[DONE]`."""
        request = request or {}
        model = str(request.get("model", ""))
        finish = reply.finish_reason or ("tool_calls" if reply.calls else "stop")
        blocks = [_data(self._chunk(model, [{"index": 0, "delta": {}, "finish_reason": finish}]))]
        options = request.get("stream_options") or {}
        if reply.usage and options.get("include_usage"):
            usage = {
                "prompt_tokens": reply.input_tokens,
                "completion_tokens": reply.output_count(),
                "total_tokens": reply.input_tokens + reply.output_count(),
            }
            choices: Any = {"empty": [], "null": None, "missing": ...}[reply.usage_choices]
            blocks.append(_data(self._chunk(model, choices, usage=usage)))
        blocks.append("data: [DONE]\n\n")
        return blocks

    def error_event(self, reply: Reply) -> list[str]:
        """An error object chunk, then `[DONE]` (as vLLM sends it)."""
        error = {"message": reply.error_message, "type": reply.error_type or "server_error", "code": 500}
        return [_data({"error": error}), "data: [DONE]\n\n"]


class FakeAnthropic(FakeUpstream):
    """Anthropic Messages streaming (`POST /v1/messages`, named events)."""

    name = "anthropic"
    prefix = "/v1"

    def route_ok(self, method: str, path: str) -> bool:
        """The messages endpoint."""
        return method == "POST" and path == self.prefix + "/messages"

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """`x-api-key` plus an `anthropic-version`."""
        return headers.get("x-api-key") == self.key and bool(headers.get("anthropic-version"))

    def error_body(self, status: int, message: str, error_type: str | None) -> Any:
        """`{"type": "error", "error": {"type", "message"}}`."""
        kinds = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}
        return {"type": "error", "error": {"type": error_type or kinds.get(status, "api_error"), "message": message}}

    @staticmethod
    def _event(name: str, payload: Any) -> str:
        """A named event."""
        return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"

    def problem(self, request: Any, path: str) -> str | None:
        """The transcript (tool results, thinking blocks and their signatures), the tools and the thinking budget."""
        return anthropic_problem(request)

    @staticmethod
    def _plain(reply: Reply) -> bool:
        """True for a text-only reply (streamed exactly as before tools and thinking existed)."""
        return not (reply.reasoning or reply.calls or reply.redacted)

    def head(self, reply: Reply, request: Any) -> list[str]:
        """message_start (input usage), content_block_start, ping."""
        model = str((request or {}).get("model", ""))
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1} if reply.usage else {},
        }
        start = self._event("message_start", {"type": "message_start", "message": message})
        if not self._plain(reply):
            return [start, self._event("ping", {"type": "ping"})]
        return [
            start,
            self._start(0, {"type": "text", "text": ""}),
            self._event("ping", {"type": "ping"}),
        ]

    def _start(self, index: int, block: dict[str, Any]) -> str:
        """content_block_start."""
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return self._event("content_block_start", start)

    def _delta(self, index: int, delta: dict[str, Any]) -> str:
        """content_block_delta."""
        return self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _stop(self, index: int) -> str:
        """content_block_stop."""
        return self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def token_events(self, reply: Reply, request: Any) -> list[str]:
        """One text_delta per token; with thinking or tools, every block from its start to its stop."""
        text = [self._delta(0, {"type": "text_delta", "text": t}) for t in reply.tokens]
        if self._plain(reply):
            return text
        model = str((request or {}).get("model", ""))
        events: list[str] = []
        index = 0
        if reply.redacted:
            data = redacted_data(model, str(len(self.received)))
            events += [self._start(index, {"type": "redacted_thinking", "data": data}), self._stop(index)]
            index += 1
        if reply.reasoning:
            events.append(self._start(index, {"type": "thinking", "thinking": "", "signature": ""}))
            events += [self._delta(index, {"type": "thinking_delta", "thinking": r}) for r in reply.reasoning]
            if reply.signed:
                signature = thinking_signature(model, "".join(reply.reasoning))
                events.append(self._delta(index, {"type": "signature_delta", "signature": signature}))
            events.append(self._stop(index))
            index += 1
        if reply.tokens:
            events.append(self._start(index, {"type": "text", "text": ""}))
            events += [self._delta(index, {"type": "text_delta", "text": t}) for t in reply.tokens]
            events.append(self._stop(index))
            index += 1
        prefix = self.call_prefix("toolu_")
        for n, call in enumerate(reply.calls):
            block: dict[str, Any] = {"type": "tool_use", "name": call.name, "input": {}}
            call_id = call.call_id(prefix, n)
            if call_id is not None:
                block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
            events.append(self._start(index, block))
            events += [self._delta(index, {"type": "input_json_delta", "partial_json": f}) for f in call.fragments()]
            events.append(self._stop(index))
            index += 1
        return events

    def tail(self, reply: Reply, request: Any) -> list[str]:
        """content_block_stop (of a plain reply), message_delta (output usage), message_stop."""
        stop_reason = reply.finish_reason or ("tool_use" if reply.calls else "end_turn")
        delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
        if reply.usage:
            delta["usage"] = {"output_tokens": reply.output_count()}
        return [
            *([self._stop(0)] if self._plain(reply) else []),
            self._event("message_delta", delta),
            self._event("message_stop", {"type": "message_stop"}),
        ]

    def error_event(self, reply: Reply) -> list[str]:
        """`event: error` (for example overloaded_error)."""
        error = {"type": reply.error_type or "overloaded_error", "message": reply.error_message}
        return [self._event("error", {"type": "error", "error": error})]


class FakeGemini(FakeUpstream):
    """Gemini streamGenerateContent with `alt=sse` (`POST /v1beta/models/{model}:streamGenerateContent`)."""

    name = "gemini"
    prefix = "/v1beta"
    default_crlf = True

    def route_ok(self, method: str, path: str) -> bool:
        """The streaming generate endpoint of some model."""
        head = self.prefix + "/models/"
        return method == "POST" and path.startswith(head) and path.endswith(":streamGenerateContent")

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """`x-goog-api-key`."""
        return headers.get("x-goog-api-key") == self.key

    def error_body(self, status: int, message: str, error_type: str | None) -> Any:
        """`[{"error": {"code", "message", "status"}}]` (the streaming endpoint answers with a list)."""
        kinds = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            503: "UNAVAILABLE",
        }
        return [{"error": {"code": status, "message": message, "status": error_type or kinds.get(status, "INTERNAL")}}]

    def _usage(self, reply: Reply) -> dict[str, Any]:
        """usageMetadata."""
        out = reply.output_count()
        return {"promptTokenCount": reply.input_tokens, "candidatesTokenCount": out, "totalTokenCount": out + 11}

    @staticmethod
    def _candidate(parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
        """One candidate."""
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return candidate

    def head(self, reply: Reply, request: Any) -> list[str]:
        """Thought parts, if scripted."""
        return [
            _data({"candidates": [self._candidate([{"text": t, "thought": True}])], "modelVersion": "fake"})
            for t in reply.thoughts
        ]

    def problem(self, request: Any, path: str) -> str | None:
        """The transcript (every call answered, thought signatures present and unmodified), tools, thinkingConfig."""
        return gemini_problem(request, self._model(path))

    @staticmethod
    def _model(path: str) -> str:
        """The model named in the request path."""
        return path.rsplit("/", 1)[-1].split(":", 1)[0]

    def streamed_request(self, request: Any, path: str) -> Any:
        """The body with the path's model as `model` (the events' signatures are bound to it)."""
        return {**request, "model": self._model(path)} if isinstance(request, dict) else {"model": self._model(path)}

    def token_events(self, reply: Reply, request: Any) -> list[str]:
        """Thought parts, one chunk per token (or the text so far, when cumulative), then the calls in one chunk.

        A blocked prompt is one feedback chunk. Signed replies carry a thoughtSignature on the first call, or
        else (with reasoning) on the last text part, or on a later empty-text part (`late_signature`).
        """
        if reply.block_reason:
            return [_data({"promptFeedback": {"blockReason": reply.block_reason}, "usageMetadata": self._usage(reply)})]
        model = str((request or {}).get("model", ""))
        events = [
            _data({"candidates": [self._candidate([{"text": r, "thought": True}])], "modelVersion": "fake"})
            for r in reply.reasoning
        ]
        sign_text = reply.signed and not reply.calls and reply.reasoning and not reply.late_signature
        for i, token in enumerate(reply.tokens):
            text = "".join(reply.tokens[: i + 1]) if reply.cumulative else token
            part: dict[str, Any] = {"text": text}
            if sign_text and i == len(reply.tokens) - 1:
                part["thoughtSignature"] = gemini_signature(model, "text")
            events.append(_data({"candidates": [self._candidate([part])], "modelVersion": "fake"}))
        if reply.calls:
            parts = []
            for n, call in enumerate(reply.calls):
                function: dict[str, Any] = {"name": call.name, "args": call.args}
                if call.id:
                    function = {"id": call.id, "name": call.name, "args": call.args}
                part = {"functionCall": function}
                if reply.signed and n == 0:
                    part["thoughtSignature"] = gemini_signature(model, "call:" + call.name)
                parts.append(part)
            events.append(_data({"candidates": [self._candidate(parts)], "modelVersion": "fake"}))
        return events

    def tail(self, reply: Reply, request: Any) -> list[str]:
        """The finishing chunk with usageMetadata (and the late thoughtSignature)."""
        if reply.block_reason:
            return []
        text = "".join(reply.tokens) if reply.cumulative else ""
        last: dict[str, Any] = {"text": text}
        if reply.late_signature and reply.signed:
            last["thoughtSignature"] = gemini_signature(str((request or {}).get("model", "")), "text")
        chunk: dict[str, Any] = {"candidates": [self._candidate([last], reply.finish_reason or "STOP")]}
        if reply.usage:
            chunk["usageMetadata"] = self._usage(reply)
        return [_data(chunk)]

    def error_event(self, reply: Reply) -> list[str]:
        """An `{"error": ...}` chunk."""
        error = {"code": 500, "message": reply.error_message, "status": reply.error_type or "INTERNAL"}
        return [_data({"error": error})]
