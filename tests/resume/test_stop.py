"""Stop: `POST /chat/stop` ends a stream with `done` marked stopped, closes the upstream at once, saves it so."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from tests.resume.reading import Read, body, tokens_of
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.upstreams import FakeOpenAI, Reply

Serve = Callable[..., httpx.Client]


class Background(threading.Thread):
    """A stream read to its end in a thread; `started` is set once its first event frame came."""

    def __init__(self, http: httpx.Client, method: str, url: str, **options: object) -> None:
        super().__init__(daemon=True)
        self.http, self.method, self.url, self.options = http, method, url, options
        self.started = threading.Event()
        self.result: Read | None = None
        self.stream_id: str | None = None
        self.start()

    def run(self) -> None:
        with self.http.stream(self.method, self.url, **self.options) as response:  # type: ignore[arg-type]
            self.stream_id = response.headers.get("x-stream-id")
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if b"event:" in data:
                    self.started.set()
            self.result = Read(response.status_code, self.stream_id, data, parse_frames(data))
        self.started.set()


def wait_for_token(reader: Background) -> str:
    """The stream id, once the reader saw a token."""
    assert reader.started.wait(10)
    assert reader.stream_id is not None
    return reader.stream_id


def test_stop_ends_the_stream_and_every_reader_with_done_marked_stopped(serve: Serve) -> None:
    http = serve()
    payload = body("st", targetChars=4000, tokenDelayMs=20)
    owner = Background(http, "POST", "/chat/stream", json=payload)
    stream_id = wait_for_token(owner)
    other = Background(http, "GET", f"/chat/stream/{stream_id}", params={"userId": "st"})
    assert other.started.wait(10)
    answer = http.post("/chat/stop", json={"userId": "st", "streamId": stream_id})
    assert answer.status_code == 200 and answer.json() == {"ok": True, "stopped": True}
    owner.join(10)
    other.join(10)
    assert owner.result is not None and other.result is not None
    for result in (owner.result, other.result):
        done = check_grammar(result.frames)
        assert done.event == "done" and done.data["stopped"] is True
        assert tokens_of(result.frames) == done.data["message"]["content"]
        assert len(done.data["message"]["content"]) < 4000
    assert owner.result.data == other.result.data
    history = http.get("/chat/history", params={"userId": "st"}).json()["messages"]
    assert history[-1]["meta"] == {"partial": True, "stopped": True}
    assert history[-1]["content"] == check_grammar(owner.result.frames).data["message"]["content"]
    # Stopped already: nothing runs any more.
    assert http.post("/chat/stop", json={"userId": "st", "streamId": stream_id}).json() == {
        "ok": True,
        "stopped": False,
    }


def test_a_stream_without_resume_stops_by_conversation_id(serve: Serve) -> None:
    http = serve()
    payload = body("sc", resume=False, targetChars=4000, tokenDelayMs=20)
    payload["params"]["conversationId"] = "talk"
    reader = Background(http, "POST", "/chat/stream", json=payload)
    wait_for_token(reader)
    answer = http.post("/chat/stop", json={"userId": "sc", "conversationId": "talk"})
    assert answer.json() == {"ok": True, "stopped": True}
    reader.join(10)
    assert reader.result is not None
    done = check_grammar(reader.result.frames)
    assert done.event == "done" and done.data["stopped"] is True
    assert b"\nid:" not in reader.result.data
    messages = http.get("/chat/conversation", params={"userId": "sc", "conversationId": "talk"}).json()["messages"]
    assert messages[-1]["meta"] == {"partial": True, "stopped": True}


def test_only_the_streams_own_user_may_stop_it(serve: Serve) -> None:
    http = serve()
    payload = body("mine", targetChars=600, tokenDelayMs=10)
    payload["params"]["conversationId"] = "mine-c"
    reader = Background(http, "POST", "/chat/stream", json=payload)
    stream_id = wait_for_token(reader)
    assert http.post("/chat/stop", json={"userId": "thief", "streamId": stream_id}).json()["stopped"] is False
    assert http.post("/chat/stop", json={"userId": "thief", "conversationId": "mine-c"}).json()["stopped"] is False
    reader.join(15)
    assert reader.result is not None
    done = check_grammar(reader.result.frames)
    assert done.event == "done" and "stopped" not in done.data


def test_stop_answers_false_for_unknown_and_422_without_a_target(serve: Serve) -> None:
    http = serve()
    for target in ({"streamId": "0" * 32}, {"streamId": "nope"}, {"conversationId": "none"}, {"streamId": "a\nb"}):
        assert http.post("/chat/stop", json={"userId": "u", **target}).json() == {"ok": True, "stopped": False}
    missing = http.post("/chat/stop", json={"userId": "u"})
    assert missing.status_code == 422
    assert http.post("/chat/stop", json={"streamId": "0" * 32}).status_code == 422
    assert http.post("/chat/stop", content=b"{").status_code == 422


def test_stop_closes_the_upstream_within_200_ms(serve: Serve, live_server: Callable[..., LiveServer]) -> None:
    fake = FakeOpenAI(Reply(tokens=[f"t{i} " for i in range(400)], token_delay=0.02))
    fake.url = live_server(fake).url
    http = serve(**fake.options())
    for resume in (True, False):
        fake.reset(Reply(tokens=[f"t{i} " for i in range(400)], token_delay=0.02))
        payload = body(f"up{resume}", resume=resume)
        payload["params"]["model"] = "gpt-4.1"
        reader = Background(http, "POST", "/chat/stream", json=payload)
        stream_id = wait_for_token(reader)
        asked = time.monotonic()
        assert http.post("/chat/stop", json={"userId": f"up{resume}", "streamId": stream_id}).json()["stopped"]
        assert fake.disconnected.wait(5)
        closed_after = fake.received[-1].disconnected_at - asked  # type: ignore[operator]
        assert closed_after < 0.2, f"upstream closed {closed_after * 1000:.0f} ms after Stop"
        reader.join(10)
        assert reader.result is not None and check_grammar(reader.result.frames).data["stopped"] is True
