"""Hypothesis over stream ids, `Last-Event-ID`, `lastEventId`, user ids and Stop bodies: never a 500, never a hang."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lean_chat.app import build_app
from lean_chat.config import Settings
from tests.reliability.test_fuzz import check_detail, fuzz_settings
from tests.resume.reading import body
from tests.support.apps import json_headers
from tests.support.frames import check_grammar, parse_frames
from tests.support.raw_asgi import RawResponse, call

OWNER = "owner"


class ResumeTarget:
    """One app (hub in memory or on Redis) on its own loop, with one finished resumable stream of OWNER."""

    def __init__(self, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = build_app(Settings(sqlite_path="", heartbeat_seconds=0, **options))
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.loop.run_until_complete(self.lifespan.__aenter__())
        seeded = self.send("POST", "/chat/stream", chunks=[json.dumps(body(OWNER, tokenDelayMs=0)).encode()])
        assert seeded.status == 200
        self.stream_id = (seeded.header(b"x-stream-id") or b"").decode()
        self.whole = seeded.body

    def send(self, method: str, path: str, **request: Any) -> RawResponse:
        """One raw request."""
        headers = request.pop("headers", None) or json_headers()
        return self.loop.run_until_complete(call(self.app, method, path, headers=headers, timeout=15, **request))

    def close(self) -> None:
        """End the lifespan and the loop."""
        self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def target(request: pytest.FixtureRequest) -> Iterator[ResumeTarget]:
    """The app under test, with each hub."""
    options = {} if request.param == "memory" else request.getfixturevalue("redis_options")
    found = ResumeTarget(**options)
    yield found
    found.close()


nasty = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "0", "-1", "+1", "1.0", "1e3", "0x1", "9" * 19, "9" * 5000, "\x00", "\ud800", "１２"]),
    st.integers(-(10**30), 10**30).map(str),
)
header_bytes = st.one_of(nasty.map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary(max_size=30))


@st.composite
def stream_ids(draw: st.DrawFn, real: str) -> str:
    """Stream ids: the real one, near misses, and anything."""
    drawn: str = draw(
        st.one_of(
            st.just(real),
            st.just(real.upper()),
            st.just(real[:-1]),
            st.just(real + "0"),
            st.text(alphabet="0123456789abcdef", min_size=31, max_size=33),
            # What a server hands over as a path: decoded text (no lone surrogates), no slash inside the id.
            nasty.filter(lambda s: "/" not in s and s not in ("", ".", "..") and _encodable(s)),
        )
    )
    return drawn


def _encodable(text: str) -> bool:
    """True when the text is valid Unicode (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check(target: ResumeTarget, response: RawResponse) -> None:
    """A sane answer: complete, never 5xx; a 200 is a well-formed stream, a 4xx explains itself."""
    assert response.status is not None and response.complete
    assert response.status in (200, 204, 404, 422), (response.status, response.body[:300])
    if response.status == 200:
        check_grammar(parse_frames(response.body), resumed=True)  # a real id resumes mid-reply
    elif response.status == 204:
        assert response.body == b""
    else:
        check_detail(response)


def test_resume_requests_never_500(target: ResumeTarget) -> None:
    @fuzz_settings(150)
    @given(
        stream_id=stream_ids(target.stream_id),
        user=st.one_of(st.just(OWNER), nasty),
        header=st.one_of(st.none(), header_bytes),
        query=st.one_of(st.none(), nasty),
    )
    @example(stream_id=target.stream_id, user=OWNER, header=b"1", query=None)  # resumes mid-reply
    @example(stream_id=target.stream_id, user=OWNER, header=b"9" * 5000, query=None)
    @example(stream_id=target.stream_id, user=OWNER, header=None, query="9" * 5000)
    @example(stream_id=target.stream_id, user=OWNER, header=b"\xff\xfe", query="\ud800")
    def one(stream_id: str, user: str, header: bytes | None, query: str | None) -> None:
        path = "/chat/stream/" + stream_id
        params = b"userId=" + quote_from_bytes(user.encode("utf-8", "surrogatepass")).encode()
        if query is not None:
            params += b"&lastEventId=" + quote_from_bytes(query.encode("utf-8", "surrogatepass")).encode()
        headers = [(b"last-event-id", header)] if header is not None else []
        response = target.send("GET", path, query=params, headers=headers or [(b"accept", b"text/event-stream")])
        check(target, response)

    one()


def test_stop_requests_never_500(target: ResumeTarget) -> None:
    @fuzz_settings(150)
    @given(
        user=st.one_of(st.just(OWNER), nasty),
        stream_id=st.one_of(st.none(), st.just(target.stream_id), nasty, st.integers(), st.lists(nasty, max_size=2)),
        conversation_id=st.one_of(st.none(), st.just(f"default:{OWNER}"), nasty, st.booleans()),
    )
    def one(user: str, stream_id: Any, conversation_id: Any) -> None:
        payload: dict[str, Any] = {"userId": user}
        if stream_id is not None:
            payload["streamId"] = stream_id
        if conversation_id is not None:
            payload["conversationId"] = conversation_id
        try:
            raw = json.dumps(payload).encode()
        except (UnicodeEncodeError, ValueError):
            return
        response = target.send("POST", "/chat/stop", chunks=[raw])
        assert response.status in (200, 400, 422), (response.status, response.body[:300])
        if response.status == 200:
            assert json.loads(response.body) == {"ok": True, "stopped": False}  # the seeded stream has ended
        else:
            check_detail(response)

    one()
