"""Regression: the `error` frames of resumable streams lacked `requestId` where plain streams' carry it; live and
replayed, on every hub, they now carry the client's own request id exactly as plain streams do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.resume.reading import body, read
from tests.support.frames import Frame, check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.upstreams import FakeOpenAI, Reply

Serve = Callable[..., httpx.Client]


def _failing(user_id: str, resume: bool) -> dict[str, object]:
    """A turn on the fake OpenAI, which fails after a few tokens (`provider_error`)."""
    payload = body(user_id, resume=resume)
    payload["params"]["model"] = "gpt-4.1"
    return payload


def _last(content: bytes) -> Frame:
    """The frame that ended a stream (checked to be the only `done` or `error`)."""
    return check_grammar(parse_frames(content))


def test_error_frames_of_resumable_streams_carry_the_request_id_as_plain_ones_do(
    serve: Serve, live_server: Callable[..., LiveServer], hub_options: dict[str, Any]
) -> None:
    fake = FakeOpenAI(Reply(tokens=["a ", "b ", "c ", "d "], fail_after=2))
    fake.url = live_server(fake).url
    instances = [serve(**fake.options()), serve(**fake.options())] if hub_options else [serve(**fake.options())]
    http = instances[0]
    for sent in ("rid-1.a:b_c", None):
        headers = {"x-request-id": sent} if sent else {}
        fake.reset(Reply(tokens=["a ", "b ", "c ", "d "], fail_after=2))
        plain = _last(http.post("/chat/stream", json=_failing(f"p{sent}", False), headers=headers).content)
        assert plain.event == "error" and plain.data["error"].get("requestId") == sent, plain.data
        fake.reset(Reply(tokens=["a ", "b ", "c ", "d "], fail_after=2))
        live = http.post("/chat/stream", json=_failing(f"r{sent}", True), headers=headers)
        error = _last(live.content)
        assert error.event == "error" and error.data["error"] == plain.data["error"], (error.data, plain.data)
        for reader in instances:  # replayed from where it was kept, to a reader with its own id or none
            for own in ({}, {"x-request-id": "reader-9"}):
                again = reader.get(
                    f"/chat/stream/{live.headers['x-stream-id']}", params={"userId": f"r{sent}"}, headers=own
                )
                assert again.status_code == 200 and _last(again.content).raw == error.raw


def test_an_abandoned_resumable_stream_ends_with_the_request_id(serve: Serve) -> None:
    http = serve(resume_grace_seconds=0.3)
    started = read(
        http,
        "POST",
        "/chat/stream",
        json=body("gone", targetChars=3000, tokenDelayMs=20),
        headers={"x-request-id": "left-early"},
        stop_after=2,
    )
    assert started.stream_id is not None and not started.ended
    time.sleep(1.5)  # no reader for the grace period: cut short with `abandoned`
    replay = http.get(f"/chat/stream/{started.stream_id}", params={"userId": "gone"})
    error = _last(replay.content)
    assert error.data["error"] == {
        "message": error.data["error"]["message"],
        "code": "abandoned",
        "requestId": "left-early",
    }


def test_a_resume_gap_names_the_readers_own_request(serve: Serve) -> None:
    http = serve(resume_max_batches=4)
    whole = http.post("/chat/stream", json=body("gap", targetChars=400, tokenDelayMs=1), headers={"x-request-id": "w"})
    stream_id = whole.headers["x-stream-id"]
    for own, expected in (({"x-request-id": "reader-7"}, "reader-7"), ({}, None)):
        gap = _last(http.get(f"/chat/stream/{stream_id}", params={"userId": "gap"}, headers=own).content)
        assert gap.data["error"]["code"] == "resume_gap" and gap.data["error"].get("requestId") == expected


def test_a_resumable_stream_into_a_deleted_conversation_ends_with_the_request_id(serve: Serve) -> None:
    http = serve()
    payload = body("del", targetChars=600, tokenDelayMs=10)
    payload["params"]["conversationId"] = "doomed"
    started = read(http, "POST", "/chat/stream", json=payload, headers={"x-request-id": "deleted-1"}, stop_after=3)
    assert started.stream_id is not None and not started.ended
    assert http.post("/chat/conversation/delete", json={"userId": "del", "conversationId": "doomed"}).status_code == 200
    replay = http.get(f"/chat/stream/{started.stream_id}", params={"userId": "del"})
    error = _last(replay.content).data["error"]
    assert error["code"] == "conversation_deleted" and error["requestId"] == "deleted-1", error
