"""Resumable streams on one instance (hub in memory and on Redis): drops, resumes, the end, the TTL, ownership."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import httpx

from tests.resume.reading import body, frame_ids, read, tokens_of
from tests.support.frames import check_grammar, parse_frames

Serve = Callable[..., httpx.Client]


def resume(http: httpx.Client, stream_id: str, user_id: str, after: int | None, **options: object) -> httpx.Response:
    """One complete resume request, after the given id (header), or from the start."""
    headers = {"Last-Event-ID": str(after)} if after is not None else {}
    return http.get(f"/chat/stream/{stream_id}", params={"userId": user_id}, headers=headers)


def test_drop_at_a_random_frame_then_resume_gives_byte_identical_tokens(serve: Serve) -> None:
    http = serve()
    rng = random.Random(13)
    reference = parse_frames(http.post("/chat/stream", json=body("ref", resume=False, targetChars=800)).content)
    for attempt in range(3):
        cut = rng.randint(1, 60)
        first = read(http, "POST", "/chat/stream", json=body(f"u{attempt}", targetChars=800), stop_after=cut)
        assert first.status == 200 and first.stream_id and not first.ended
        rest = resume(http, first.stream_id, f"u{attempt}", first.last_id)
        assert rest.status_code == 200 and rest.headers["x-stream-id"] == first.stream_id
        frames = first.frames + parse_frames(rest.content)
        done = check_grammar(frames)
        assert done.event == "done"
        ids = frame_ids([f for f in frames if f.event is not None])
        assert ids == list(range(1, len(ids) + 1)), "every frame once, ids in order, none repeated or skipped"
        assert tokens_of(frames) == done.data["message"]["content"] == reference[-1].data["message"]["content"]
        assert [f.data["token"] for f in frames if f.event == "token"] == [
            f.data["token"] for f in reference if f.event == "token"
        ]


def test_many_drops_in_one_stream(serve: Serve) -> None:
    http = serve()
    first = read(http, "POST", "/chat/stream", json=body("many", targetChars=1500, tokenDelayMs=3), stop_after=3)
    assert first.stream_id is not None
    frames, after, drops = list(first.frames), first.last_id, 0
    while not frames or frames[-1].event not in ("done", "error"):
        headers = {"Last-Event-ID": str(after)}
        piece = read(
            http, "GET", f"/chat/stream/{first.stream_id}", params={"userId": "many"}, headers=headers, stop_after=7
        )
        assert piece.status == 200
        frames += piece.frames
        after = piece.last_id if piece.last_id is not None else after
        drops += 1
    assert drops >= 5
    done = check_grammar(frames)
    assert tokens_of(frames) == done.data["message"]["content"]
    ids = frame_ids(frames)
    assert ids == list(range(1, len(ids) + 1))


def test_resume_after_the_end_replays_the_whole_stream_then_204(serve: Serve) -> None:
    http = serve()
    whole = http.post("/chat/stream", json=body("end", tokenDelayMs=0))
    stream_id = whole.headers["x-stream-id"]
    again = resume(http, stream_id, "end", None)
    assert again.status_code == 200 and again.content == whole.content
    also = http.get(f"/chat/stream/{stream_id}", params={"userId": "end", "lastEventId": "0"})
    assert also.content == whole.content
    tail = resume(http, stream_id, "end", 5)
    assert tail.content == b"".join(f.raw.encode() + b"\n\n" for f in parse_frames(whole.content)[5:])
    last = frame_ids(parse_frames(whole.content))[-1]
    # Nothing left to send from a finished stream: 204, which tells EventSource to stop reconnecting.
    assert resume(http, stream_id, "end", last).status_code == 204
    assert resume(http, stream_id, "end", last + 100).status_code == 204


def test_a_finished_stream_answers_204_after_its_ttl(serve: Serve) -> None:
    http = serve(resume_ttl_seconds=0.5)
    stream_id = http.post("/chat/stream", json=body("ttl", tokenDelayMs=0)).headers["x-stream-id"]
    assert resume(http, stream_id, "ttl", None).status_code == 200
    time.sleep(1.2)
    gone = resume(http, stream_id, "ttl", None)
    assert gone.status_code == 204 and gone.content == b""


def test_another_users_stream_is_404_and_unknown_ids_are_204(serve: Serve) -> None:
    http = serve()
    stream_id = http.post("/chat/stream", json=body("owner", tokenDelayMs=0)).headers["x-stream-id"]
    foreign = resume(http, stream_id, "intruder", None)
    assert foreign.status_code == 404 and foreign.json() == {"detail": "Not Found"}
    for unknown in ("0" * 32, "f" * 32, "not-a-stream", stream_id.upper(), stream_id + "0"):
        assert resume(http, unknown, "owner", None).status_code == 204
    missing_user = http.get(f"/chat/stream/{stream_id}")
    assert missing_user.status_code == 422 and missing_user.json()["detail"][0]["loc"] == ["query", "userId"]
    for bad in ("-1", "abc", "1.5", "9" * 40, "0x10"):
        answer = resume(http, stream_id, "owner", bad)  # type: ignore[arg-type]
        assert answer.status_code == 422, bad
        assert answer.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]


def test_without_resume_a_stream_is_todays_bytes_plus_its_id_header(serve: Serve) -> None:
    http = serve()
    plain = http.post("/chat/stream", json=body("plain", resume=False, tokenDelayMs=0))
    assert re.fullmatch(r"[0-9a-f]{32}", plain.headers["x-stream-id"])
    assert b"\nid:" not in plain.content and not plain.content.startswith(b"id:")
    kept = http.post("/chat/stream", json=body("kept", tokenDelayMs=0))
    # The same frames, the resumable ones with an `id:` line each (conversation ids differ by user).
    without_ids = re.sub(rb"id: \d+\n", b"", kept.content).replace(b"default:kept", b"default:plain")
    assert without_ids == plain.content
    # A stream without resume keeps nothing to resume.
    assert resume(http, plain.headers["x-stream-id"], "plain", None).status_code == 204


def test_the_reply_goes_on_when_the_client_goes_away(serve: Serve) -> None:
    http = serve()
    first = read(http, "POST", "/chat/stream", json=body("away", targetChars=600, tokenDelayMs=8), stop_after=2)
    assert first.stream_id is not None and not first.ended
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        history = http.get("/chat/history", params={"userId": "away"}).json()["messages"]
        if history[-1]["role"] == "assistant":
            break
        time.sleep(0.1)
    assert history[-1]["role"] == "assistant" and history[-1]["meta"] is None, "saved whole, as usual"
    rest = resume(http, first.stream_id, "away", first.last_id)
    frames = first.frames + parse_frames(rest.content)
    assert tokens_of(frames) == check_grammar(frames).data["message"]["content"] == history[-1]["content"]


def test_with_no_reader_for_the_grace_period_the_reply_is_cut_short(serve: Serve) -> None:
    http = serve(resume_grace_seconds=0.3)
    first = read(http, "POST", "/chat/stream", json=body("gone", targetChars=4000, tokenDelayMs=20), stop_after=2)
    assert first.stream_id is not None
    time.sleep(1.0)
    rest = resume(http, first.stream_id, "gone", first.last_id)
    last = check_grammar(first.frames + parse_frames(rest.content))
    assert last.event == "error" and last.data["error"]["code"] == "abandoned"
    history = http.get("/chat/history", params={"userId": "gone"}).json()["messages"]
    assert history[-1]["meta"] == {"partial": True}
    assert history[-1]["content"] == tokens_of(first.frames + parse_frames(rest.content))


def test_a_reader_keeps_the_reply_going_past_the_grace(serve: Serve) -> None:
    http = serve(resume_grace_seconds=0.3)
    first = read(http, "POST", "/chat/stream", json=body("stay", targetChars=600, tokenDelayMs=10), stop_after=2)
    assert first.stream_id is not None
    rest = resume(http, first.stream_id, "stay", first.last_id)  # reconnected within the grace: reads to the end
    assert check_grammar(first.frames + parse_frames(rest.content)).event == "done"


def test_active_stream_id_names_the_running_stream_of_a_conversation(serve: Serve) -> None:
    http = serve()
    payload = body("act", targetChars=600, tokenDelayMs=10)
    payload["params"]["conversationId"] = "c1"
    first = read(http, "POST", "/chat/stream", json=payload, stop_after=2)
    rows = http.get("/chat/conversations", params={"userId": "act"}).json()["conversations"]
    assert [(r["conversationId"], r["activeStreamId"]) for r in rows] == [("c1", first.stream_id)]
    assert first.stream_id is not None
    resume(http, first.stream_id, "act", first.last_id)  # to the end
    rows = http.get("/chat/conversations", params={"userId": "act"}).json()["conversations"]
    assert [(r["conversationId"], r["activeStreamId"]) for r in rows] == [("c1", None)]


def test_heartbeats_carry_no_id(serve: Serve) -> None:
    http = serve(heartbeat_seconds=0.05)
    first = read(http, "POST", "/chat/stream", json=body("ping", targetChars=250, tokenDelayMs=120), stop_after=2)
    assert first.stream_id is not None
    rest = resume(http, first.stream_id, "ping", first.last_id)
    everything = first.data + rest.content
    assert b": ping\n" in everything
    for block in everything.split(b"\n\n"):
        # A ping is a comment line of its own, never followed by an id (and never carrying one).
        lines = [line for line in block.split(b"\n") if line != b": ping"]
        if lines and lines != [b""]:
            assert lines[-1].startswith(b"id: ") and lines[-1][4:].isdigit(), block
