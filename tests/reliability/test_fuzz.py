"""Bad input, generated: bodies, query strings and headers thrown at every endpoint; never a 500, never a hang.

The AI SDK dialect is among them: UIMessage lists with malformed messages, unknown part types, huge ids, other
users' chat ids (the victim's: never changed, never shown), regenerate triggers aimed at them.

Integers longer than Python's int-string limit (4,300 digits) appear anywhere in bodies and in query values.

Every answer must be a 4xx with a clear `detail`, or a normal 200 (a stream then ends with exactly one `done`
or `error`), within a deadline; and the victim user's conversations are unchanged afterwards. The normal run
tries a few hundred inputs; `-m slow` tries more than 10,000.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lean_chat.app import build_app
from lean_chat.config import Settings
from lean_chat.fastapi_shim import wrap_in_fastapi
from lean_chat.store.base import StoredMessage
from lean_chat.store.sqlite import SQLiteStore
from tests.support.frames import check_grammar, parse_frames
from tests.support.raw_asgi import RawResponse, call
from tests.support.tools import add, explode

VICTIM = "victim"
VICTIM_IDS = ["v-1", "v-2", f"default:{VICTIM}"]
MAX_BODY = 32 * 1024
AUTH_KEY = "fuzz-backend-key"

POST_PATHS = ["/chat/stream", "/chat/clear", "/chat/conversation/create", "/chat/conversation/delete", "/chat/ui"]
GET_PATHS = [
    "/chat/history",
    "/chat/conversations",
    "/chat/conversation",
    "/healthz",
    "/chat/ui/v-1/messages",
    "/chat/ui/v-2/stream",
    f"/chat/ui/default:{VICTIM}/messages",
    "/chat/ui/" + "z" * 300 + "/messages",
    "/chat/ui/%00/stream",
]

# --- strategies -------------------------------------------------------------------------------------------

nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\u202e", "default:victim", "v-1", "  v-2 "]),
    st.sampled_from(["NaN", "-1", "1e400", "0x10", "\n\n", "é" * 100]),
    st.builds(lambda n: "z" * n, st.integers(0, 3000)),
)
user_ids = nasty_text.filter(lambda s: s != VICTIM)
conversation_ids = st.one_of(nasty_text, st.sampled_from(VICTIM_IDS))


class RawNumber(str):
    """A JSON number written as is: integers longer than `int()` reads from a string (4,300 digits)."""


# Digits past the int-string limit, sometimes as a float (which is fine) or with a sign.
long_digits = st.builds(lambda n, digit: digit * n, st.sampled_from([4301, 4302, 5000, 6000]), st.sampled_from("19"))
raw_numbers = st.builds(
    lambda sign, digits, tail: RawNumber(sign + digits + tail),
    st.sampled_from(["", "-"]),
    long_digits,
    st.sampled_from(["", "", "", "", ".5", "e3"]),
)


@st.composite
def long_number_bodies(draw: st.DrawFn) -> Any:
    """A good body but for a long integer in one place: any field, a message, its meta, nested params, a knob."""
    number = draw(raw_numbers)
    chat = [{"role": "user", "content": "x"}]
    return draw(
        st.sampled_from(
            [
                {"userId": number, "messages": chat, "conversationId": "c", "title": "t"},
                {"userId": "u", "messages": chat, "conversationId": number, "title": number},
                {"userId": "u", "messages": [{"role": "user", "content": number}]},
                {"userId": "u", "messages": [{"role": "user", "content": "x", "meta": {"k": [number]}}]},
                {"userId": "u", "messages": chat, "params": {"mock": {"targetChars": number}}},
                {"userId": "u", "messages": chat, "params": {"a": {"b": [1, {"c": number}]}}},
                {"userId": "u", "messages": chat, "params": {"model": number, "conversationId": number}},
                [number],
                number,
            ]
        )
    )


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
    raw_numbers,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(nasty_text, st.sampled_from(["role", "content"])), inner, max_size=4),
    ),
    max_leaves=12,
)


def _or_any(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right kind of value, sometimes any JSON value (wrong types)."""
    return st.one_of(value, value, value, json_values)


roles = st.one_of(st.sampled_from(["user", "assistant", "system"]), st.sampled_from(["tool", "User", "", "bot"]))
messages = st.lists(
    st.fixed_dictionaries(
        {"role": _or_any(roles), "content": _or_any(nasty_text)},
        optional={"meta": _or_any(st.none() | st.dictionaries(nasty_text, json_values, max_size=3))},
    )
    | json_values,
    max_size=6,
)
# The mock's tool calls (issue 21): names registered or not, any arguments, or any JSON at all.
tool_calls = st.lists(
    st.fixed_dictionaries(
        {"name": _or_any(st.sampled_from(["add", "explode", "", "ghost"]) | nasty_text)}, optional={"args": json_values}
    )
    | json_values,
    max_size=4,
)
mock_knobs = st.dictionaries(
    st.sampled_from(["targetChars", "includePrefix", "seed", "reasoning", "toolCalls"]),
    st.one_of(json_values, tool_calls, nasty_text),
    max_size=3,
)
params = st.fixed_dictionaries(
    {},
    optional={
        "model": _or_any(st.sampled_from(["mock", "mock-x", "gpt-4.1", "claude-3", "gemini-pro", " ", "MOCK"])),
        "conversationId": _or_any(conversation_ids),
        "mock": mock_knobs,
        "extra": json_values,
        "events": _or_any(st.lists(st.sampled_from(["reasoning", "tools", "x"]), max_size=3)),
        "tools": _or_any(st.lists(st.sampled_from(["add", "explode"]) | nasty_text, max_size=3)),
        "maxSteps": json_values,
        "reasoning": _or_any(st.fixed_dictionaries({}, optional={"effort": json_values, "budgetTokens": json_values})),
    },
)
part_types = st.one_of(
    st.sampled_from(["text", "text", "reasoning", "step-start", "tool-x", "dynamic-tool", "file", "source-url"]),
    st.sampled_from(["data-x", "", "TEXT", "image"]),
    nasty_text,
)
ui_parts = st.lists(
    st.fixed_dictionaries({"type": _or_any(part_types)}, optional={"text": _or_any(nasty_text), "url": nasty_text})
    | json_values,
    max_size=3,
)
ui_messages = st.lists(
    st.fixed_dictionaries(
        {"id": _or_any(conversation_ids), "role": _or_any(roles), "parts": _or_any(ui_parts)},
        optional={"metadata": json_values},
    )
    | json_values,
    max_size=5,
)
ui_bodies = st.fixed_dictionaries(
    {"id": _or_any(conversation_ids), "messages": _or_any(ui_messages)},
    optional={
        "userId": _or_any(user_ids),
        "trigger": _or_any(st.sampled_from(["submit-message", "regenerate-message", "resume-stream", ""])),
        "messageId": _or_any(conversation_ids),
        "model": _or_any(st.sampled_from(["mock", "gpt-4.1", " "])),
        "mock": mock_knobs,
        "resume": json_values,
        "tools": _or_any(st.lists(st.sampled_from(["add", "explode"]) | nasty_text, max_size=3)),
        "maxSteps": json_values,
        "reasoning": json_values,
    },
)
structured_bodies = st.fixed_dictionaries(
    {},
    optional={
        "userId": _or_any(user_ids),
        "messages": _or_any(messages),
        "params": _or_any(params),
        "conversationId": _or_any(conversation_ids),
        "title": _or_any(nasty_text),
    },
)


def _fast(body: Any) -> Any:
    """Keep generated mock streams quick: no pacing (a paced reply is slow, not wrong)."""
    if isinstance(body, dict) and "id" in body:  # a /chat/ui body: its options beside the transport's fields
        knobs = body.get("mock")
        body["mock"] = {**(knobs if isinstance(knobs, dict) else {}), "tokenDelayMs": 0, "jitterMs": 0}
    if isinstance(body, dict) and isinstance(body.get("params"), dict):
        knobs = body["params"].get("mock")
        body["params"]["mock"] = {**(knobs if isinstance(knobs, dict) else {}), "tokenDelayMs": 0, "jitterMs": 0}
    return body


def _dump(value: Any) -> bytes:
    """JSON text as a careless client writes it (NaN, lone surrogates escaped, big numbers)."""
    return _json_text(value).encode()


def _json_text(value: Any) -> str:
    """`json.dumps`, but a RawNumber is written unquoted, however long."""
    if isinstance(value, RawNumber):
        return str.__str__(value)
    if isinstance(value, dict):
        return "{" + ",".join(_json_text(str(k)) + ":" + _json_text(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_text(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=True)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A request body: well-formed but wrong, truncated, deeply nested, huge, invalid UTF-8, or noise."""
    base = _dump(_fast(draw(st.one_of(structured_bodies, structured_bodies, ui_bodies))))
    kind = draw(
        st.sampled_from(["json", "json", "json", "cut", "nested", "huge", "utf8", "nul", "noise", "value", "long"])
    )
    if kind == "long":
        return _dump(_fast(draw(long_number_bodies())))
    if kind == "cut":
        return base[: draw(st.integers(0, max(0, len(base) - 1)))]
    if kind == "nested":
        depth = draw(st.sampled_from([100, 1000, 5000, 20000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = (opener * depth + "1" + closer * depth).encode()
        where = draw(st.sampled_from(["body", "params", "meta"]))
        if where == "body":
            return inner
        if where == "params":
            return b'{"userId":"deep","messages":[],"params":' + inner + b"}"
        return b'{"userId":"deep","messages":[{"role":"user","content":"x","meta":{"m":' + inner + b"}}]}"
    if kind == "huge":
        size = draw(st.sampled_from([MAX_BODY - 200, MAX_BODY + 1, 5 * MAX_BODY]))
        return b'{"userId":"big","messages":[{"role":"user","content":"' + b"a " * (size // 2) + b'"}]}'
    if kind == "utf8":
        at = draw(st.integers(0, len(base)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80\x80"]))
        return base[:at] + junk + base[at:]
    if kind == "nul":
        return base.replace(b'"', b'"\x00', draw(st.integers(1, 3)))
    if kind == "noise":
        return draw(st.binary(max_size=200))
    return _dump(draw(json_values))


content_types = st.one_of(
    st.sampled_from(
        [
            b"application/json",
            b"application/json; charset=utf-8",
            b"APPLICATION/JSON",
            b"application/vnd.api+json",
            b"text/plain",
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"",
            b";;;",
        ]
    ),
    st.binary(max_size=30),
)
header_lists = st.lists(
    st.one_of(
        st.tuples(st.just(b"content-length"), st.sampled_from([b"abc", b"-1", b"99999999999999999999", b"0", b"5"])),
        st.tuples(st.just(b"authorization"), st.binary(max_size=40)),
        st.tuples(st.just(b"origin"), st.sampled_from([b"https://x.example", b"null", b"\xff"])),
        st.tuples(st.binary(min_size=1, max_size=20).map(bytes.lower), st.binary(max_size=40)),
    ),
    max_size=4,
)


# What an HTTP server hands over as a raw query string: visible ASCII (other bytes arrive %-escaped).
url_bytes = st.binary(max_size=30).map(lambda raw: bytes(b for b in raw if 0x21 <= b <= 0x7E and b != 0x23))


# An integer past the int-string limit, written the ways a query value is still read as one (sign, `_`, space, .0).
long_query_integers = st.builds(
    lambda head, digits, tail: head + digits.encode() + tail,
    st.sampled_from([b"", b"+", b"-", b" ", b"1_", b"0"]),
    long_digits,
    st.sampled_from([b"", b".0", b" ", b"_1"]),
)


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    """A query string: the usual names with nasty values, repeats, bad escapes (%FF, %zz) and odd bytes."""
    pairs = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from([b"userId", b"conversationId", b"limit"]), url_bytes),
                st.one_of(
                    st.sampled_from([b"", b"0", b"-1", b"50", b"1e3", b"99999999999999999999999", b"%", b"%zz"]),
                    long_query_integers,
                    user_ids.map(lambda s: s.encode("utf-8", "surrogatepass")),
                    st.sampled_from([v.encode() for v in VICTIM_IDS]),
                    st.binary(max_size=30),
                    url_bytes,
                ),
            ),
            max_size=5,
        )
    )
    escape = draw(st.booleans())
    parts = [
        (quote_from_bytes(k) + "=" + quote_from_bytes(v)).encode() if escape or not v.isascii() else k + b"=" + v
        for k, v in pairs
    ]
    return b"&".join(parts)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """One whole request: method, path, query, headers, body chunks, maybe truncated."""
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["PUT", "DELETE", "PATCH", "GET", "POST", "OPTIONS", "BREW"]))
        path = draw(st.sampled_from([*POST_PATHS, *GET_PATHS, "/", "/chat", "/chat/stream/", "/\x00", "/\ufffd"]))
    else:
        method, path = draw(st.sampled_from([("POST", p) for p in POST_PATHS] + [("GET", p) for p in GET_PATHS]))
    body = draw(bodies()) if method != "GET" or draw(st.integers(0, 4)) == 0 else b""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    edges = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in zip(edges, edges[1:], strict=False)] or [b""]
    headers = draw(header_lists)
    if draw(st.booleans()):
        headers.insert(0, (b"content-type", draw(content_types)))
    return {
        "method": method,
        "path": path,
        "query": draw(query_strings()),
        "headers": headers,
        "chunks": chunks,
        "truncated": draw(st.integers(0, 9)) == 0,
    }


# --- the app under test ----------------------------------------------------------------------------------


class Target:
    """One lean_chat app (SQLite) on its own event loop, with a victim user whose data must not change."""

    def __init__(self, path: str, api_keys: list[str] | None = None, shim_at: str = "") -> None:
        self.keys = api_keys or []
        self.prefix = shim_at
        self.loop = asyncio.new_event_loop()
        self.store = SQLiteStore(path)
        config = Settings(
            sqlite_path=path,
            max_body_bytes=MAX_BODY,
            max_messages_per_request=50,
            max_message_chars=4000,
            heartbeat_seconds=0,
            api_keys=self.keys,
        )
        self.app: Any = build_app(config, store=self.store, tools=[add, explode])
        if shim_at:
            # The FastAPI shim mounted in a parent app: its own store on the same file, the victim's seen by ours.
            shim = wrap_in_fastapi(config, tools=[add, explode])
            self.app = FastAPI(lifespan=shim.router.lifespan_context)
            self.app.mount(shim_at, shim)
            self.loop.run_until_complete(self.store.open())
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.tried = 0
        self.statuses: dict[int, int] = {}
        self.answered: set[tuple[str, int]] = set()  # (path, status) pairs seen
        self.loop.run_until_complete(self.lifespan.__aenter__())
        self.loop.run_until_complete(self._seed())
        self.before = self.loop.run_until_complete(self.victim_view())

    async def _seed(self) -> None:
        """The victim's conversations, written through the store."""
        for cid in VICTIM_IDS:
            history = [StoredMessage("user", f"private {cid}"), StoredMessage("assistant", "ok", {"partial": True})]
            await self.store.create(VICTIM, cid, f"title {cid}")
            start = await self.store.start_turn(VICTIM, cid, history[:1], 400_000)
            await self.store.save_reply(VICTIM, cid, start.life, history[1])

    async def victim_view(self) -> list[Any]:
        """Everything stored for the victim."""
        listed = await self.store.list_conversations(VICTIM, 100)
        return [[(c.conversationId, c.title, c.messageCount) for c in listed]] + [
            await self.store.read(VICTIM, cid) for cid in VICTIM_IDS
        ]

    def check(self, request: dict[str, Any]) -> None:
        """Send one request and assert the answer is sane."""
        self.tried += 1
        sent = {**request, "path": self.prefix + request["path"]}
        response = self.loop.run_until_complete(call(self.app, **sent, timeout=15))
        assert response.status is not None, "no response"
        self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
        self.answered.add((request["path"], response.status))
        if request.get("truncated") and not response.complete:
            return  # the client vanished mid-request; the app stopped answering it (and did return)
        assert response.complete, "response not finished"
        if response.status == 307:  # Starlette's trailing-slash redirect, as FastAPI's
            assert request["path"].endswith("/") and response.header(b"location"), request["path"]
            return
        assert response.status in (200, 204) or 400 <= response.status < 500, (response.status, response.body[:300])
        if response.status == 204:  # nothing to resume
            assert request["path"].endswith("/stream") and not response.body
            return
        if response.status != 200:
            check_detail(response)
        elif request["path"] == "/chat/stream":
            assert b"Traceback" not in response.body
            check_grammar(parse_frames(response.body), opted_in=True)  # params.events may have asked for events
        elif request["path"] == "/chat/ui":
            check_ui_chunks(response.body)
        elif request["path"].endswith("/messages"):
            assert isinstance(json.loads(response.body), list)
        else:
            assert isinstance(json.loads(response.body), dict)

    def close(self) -> None:
        """Check the victim, end the lifespan, close the loop."""
        try:
            assert self.loop.run_until_complete(self.victim_view()) == self.before
        finally:
            self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
            if self.prefix:
                self.loop.run_until_complete(self.store.close())
            self.loop.close()


def check_ui_chunks(body: bytes) -> None:
    """A UI message stream: `data:` events of JSON chunks (comments aside), `start` first, `[DONE]` last, exactly one
    `finish` or `error` just before it."""
    events = [e for e in body.split(b"\n\n") if e.strip(b"\n") and not e.startswith(b":")]
    data = [e.split(b"\n")[-1] for e in events]
    assert all(line.startswith(b"data: ") for line in data), body[:300]
    assert data[-1] == b"data: [DONE]", body[-300:]
    chunks = [json.loads(line[len(b"data: ") :]) for line in data[:-1]]
    assert chunks[0]["type"] == "start"
    ends = [c for c in chunks if c["type"] in ("finish", "error")]
    assert len(ends) == 1 and ends[0] is chunks[-1], chunks[-3:]
    if ends[0]["type"] == "error":
        assert ends[0]["errorText"] and ends[0]["code"] and "Traceback" not in ends[0]["errorText"]


def check_detail(response: RawResponse) -> None:
    """A 4xx body is JSON with a non-empty `detail` (a string, or a list of errors with `msg` and `loc`)."""
    data = json.loads(response.body)
    detail = data["detail"]
    if isinstance(detail, list):
        assert detail, "empty detail list"
        for entry in detail:
            assert entry["msg"] and isinstance(entry["loc"], list)
    else:
        assert isinstance(detail, str) and detail


@pytest.fixture
def target(tmp_path: Any) -> Iterator[Target]:
    """A fresh app with a seeded victim."""
    found = Target(str(tmp_path / "fuzz.sqlite3"))
    yield found
    found.close()


@pytest.fixture
def auth_target(tmp_path: Any) -> Iterator[Target]:
    """A fresh app with a seeded victim and API keys required."""
    found = Target(str(tmp_path / "fuzz-auth.sqlite3"), [AUTH_KEY])
    yield found
    found.close()


def fuzz_settings(count: int) -> settings:
    """Hypothesis settings for `count` examples: no deadline, no example database, no slowness checks."""
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# A good /chat/ui body (the attacker's own chat), and a part type lean_chat refuses by name.
UI_GOOD: dict[str, Any] = {
    "id": "mine",
    "userId": "attacker",
    "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
}
UI_FILE = {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,AAAA"}


def run_requests(target: Target, count: int) -> None:
    """Throw `count` generated whole requests at the app."""

    @fuzz_settings(count)
    @given(request=requests(), signed=st.booleans())
    def one(request: dict[str, Any], signed: bool) -> None:
        if signed and target.keys:
            request["headers"] = [(b"authorization", b"Bearer " + target.keys[0].encode()), *request["headers"]]
        target.check(request)

    one()


def run_bodies(target: Target, count: int) -> None:
    """Throw `count` generated bodies at every POST endpoint (JSON content type)."""

    @fuzz_settings(count)
    @given(path=st.sampled_from(POST_PATHS), body=bodies())
    @example(path="/chat/clear", body=b'{"userId":' + b"1" * 4301 + b"}")
    @example(path="/chat/ui", body=_dump(_fast(UI_GOOD)))
    @example(path="/chat/ui", body=_dump(_fast({**UI_GOOD, "id": "v-1", "trigger": "regenerate-message"})))
    @example(path="/chat/ui", body=_dump(_fast({**UI_GOOD, "id": "v-2", "messageId": "v-2", "userId": "x" * 5000})))
    @example(path="/chat/ui", body=_dump({**UI_GOOD, "messages": [{"id": "f", "role": "user", "parts": [UI_FILE]}]}))
    def one(path: str, body: bytes) -> None:
        headers = [(b"content-type", b"application/json")]
        target.check({"method": "POST", "path": path, "headers": headers, "chunks": [body]})

    one()


def run_queries(target: Target, count: int) -> None:
    """Throw `count` generated query strings at every GET endpoint."""

    @fuzz_settings(count)
    @given(path=st.sampled_from(GET_PATHS), query=query_strings())
    @example(path="/chat/conversations", query=b"userId=u&limit=" + b"1" * 4301)
    def one(path: str, query: bytes) -> None:
        target.check({"method": "GET", "path": path, "query": query})

    one()


SHORT = int(os.environ.get("LEAN_CHAT_FUZZ_SHORT", "120"))


def test_generated_bodies(target: Target) -> None:
    run_bodies(target, SHORT)
    assert target.tried >= SHORT
    assert {("/chat/ui", 200), ("/chat/ui", 422)} <= target.answered  # the dialect streamed, and refused


def test_generated_query_strings(target: Target) -> None:
    run_queries(target, SHORT)
    assert target.tried >= SHORT


def test_generated_requests(target: Target) -> None:
    run_requests(target, SHORT)
    assert target.tried >= SHORT


def test_generated_requests_with_authentication_on(auth_target: Target) -> None:
    # Two controls first, so both sides of the key check are exercised whatever the generator draws.
    control = {"method": "GET", "path": "/chat/history", "query": b"userId=control"}
    auth_target.check({**control, "headers": []})
    signed = [(b"authorization", b"Bearer " + auth_target.keys[0].encode())]
    auth_target.check({**control, "headers": signed})
    assert auth_target.statuses == {401: 1, 200: 1}
    run_requests(auth_target, SHORT // 2)
    assert auth_target.tried >= SHORT // 2 + 2


def test_generated_requests_under_the_shim_at_a_prefix_with_authentication_on(tmp_path: Any) -> None:
    shim = Target(str(tmp_path / "fuzz-shim.sqlite3"), [AUTH_KEY], shim_at="/ai")
    try:
        shim.check({"method": "GET", "path": "/healthz", "headers": []})
        shim.check({"method": "GET", "path": "/chat/history", "query": b"userId=control", "headers": []})
        assert shim.statuses == {200: 1, 401: 1}
        run_requests(shim, SHORT // 2)
        assert shim.tried >= SHORT // 2 + 2
    finally:
        shim.close()


@pytest.mark.slow
def test_generated_inputs_long_run(target: Target, auth_target: Target) -> None:
    """The long run: more than 10,000 inputs in total, figures printed for the README."""
    run_bodies(target, 4000)
    run_queries(target, 2500)
    run_requests(target, 3000)
    run_requests(auth_target, 1500)
    tried = target.tried + auth_target.tried
    assert tried >= 10_000
    statuses = {
        k: target.statuses.get(k, 0) + auth_target.statuses.get(k, 0)
        for k in {**target.statuses, **auth_target.statuses}
    }
    print(f"\nfuzz long run: {tried} inputs tried; statuses {sorted(statuses.items())}")
