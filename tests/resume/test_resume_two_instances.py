"""Two `lean-chat serve` processes sharing Redis and a SQLite file: resume, Stop and the stream limit across
instances, and a producer killed mid-reply."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.resume.reading import body, frame_ids, read, tokens_of
from tests.resume.test_stop import Background, wait_for_token
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.server_process import ServerProcess
from tests.support.upstreams import FakeOpenAI, Reply


@contextmanager
def two_instances(
    tmp_path: Path, redis_options: dict[str, Any], **env: str
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Instances A and B on one Redis (the test's prefix) and one SQLite file."""
    environment = {
        "LEAN_CHAT_REDIS_URL": redis_options["redis_url"],
        "LEAN_CHAT_REDIS_PREFIX": redis_options["redis_prefix"],
        "LEAN_CHAT_RESUME_LEASE_SECONDS": "1.5",
        **env,
    }
    sqlite_path = str(tmp_path / "shared.sqlite3")
    with ExitStack() as stack:
        a = stack.enter_context(ServerProcess(sqlite_path, tmp_path / "a.log", environment, log_level="warning"))
        b = stack.enter_context(ServerProcess(sqlite_path, tmp_path / "b.log", environment, log_level="warning"))
        yield a, b


@pytest.mark.redis
def test_a_stream_started_on_a_resumes_on_b(tmp_path: Path, redis_options: dict[str, Any]) -> None:
    with two_instances(tmp_path, redis_options) as (a, b), httpx.Client(timeout=20) as http:
        reference = http.post(f"{b.url}/chat/stream", json=body("ref", resume=False, targetChars=900)).content
        first = read(http, "POST", f"{a.url}/chat/stream", json=body("ab", targetChars=900), stop_after=9)
        assert first.stream_id is not None and not first.ended
        rest = http.get(
            f"{b.url}/chat/stream/{first.stream_id}",
            params={"userId": "ab"},
            headers={"Last-Event-ID": str(first.last_id)},
        )
        assert rest.status_code == 200
        frames = first.frames + parse_frames(rest.content)
        done = check_grammar(frames)
        assert (
            tokens_of(frames)
            == done.data["message"]["content"]
            == check_grammar(parse_frames(reference)).data["message"]["content"]
        )
        ids = frame_ids(frames)
        assert ids == list(range(1, len(ids) + 1))
        # Another user's stream is not found on B either; B answers 204 once nothing is left.
        assert http.get(f"{b.url}/chat/stream/{first.stream_id}", params={"userId": "x"}).status_code == 404
        headers = {"Last-Event-ID": str(ids[-1])}
        assert (
            http.get(f"{b.url}/chat/stream/{first.stream_id}", params={"userId": "ab"}, headers=headers).status_code
            == 204
        )


@pytest.mark.redis
def test_stop_on_b_closes_the_upstream_of_a_stream_on_a_within_200_ms(
    tmp_path: Path, redis_options: dict[str, Any], live_server: Callable[..., LiveServer]
) -> None:
    fake = FakeOpenAI(Reply(tokens=[f"w{i} " for i in range(600)], token_delay=0.02))
    fake.url = live_server(fake).url
    with two_instances(tmp_path, redis_options, **fake.env()) as (a, b), httpx.Client(timeout=20) as http:
        for resume in (True, False):
            fake.reset(Reply(tokens=[f"w{i} " for i in range(600)], token_delay=0.02))
            payload = body(f"stop{resume}", resume=resume)
            payload["params"]["model"] = "gpt-4.1"
            payload["params"]["conversationId"] = f"c{resume}"
            reader = Background(http, "POST", f"{a.url}/chat/stream", json=payload)
            stream_id = wait_for_token(reader)
            target = {"streamId": stream_id} if resume else {"conversationId": f"c{resume}"}
            asked = time.monotonic()
            answer = http.post(f"{b.url}/chat/stop", json={"userId": f"stop{resume}", **target})
            assert answer.json() == {"ok": True, "stopped": True}
            assert fake.disconnected.wait(5)
            closed_after = fake.received[-1].disconnected_at - asked  # type: ignore[operator]
            assert closed_after < 0.2, f"upstream closed {closed_after * 1000:.0f} ms after Stop on the other instance"
            reader.join(10)
            assert reader.result is not None
            done = check_grammar(reader.result.frames)
            assert done.event == "done" and done.data["stopped"] is True
            saved = http.get(
                f"{b.url}/chat/conversation", params={"userId": f"stop{resume}", "conversationId": f"c{resume}"}
            ).json()["messages"]
            assert saved[-1]["meta"] == {"partial": True, "stopped": True}
            assert saved[-1]["content"] == done.data["message"]["content"]


@pytest.mark.redis
def test_sigkill_of_the_producer_mid_reply_then_resume_on_b(tmp_path: Path, redis_options: dict[str, Any]) -> None:
    with two_instances(tmp_path, redis_options) as (a, b), httpx.Client(timeout=30) as http:
        payload = body("kill", targetChars=6000, tokenDelayMs=15)
        headers = {"x-request-id": "killed-1"}
        on_a = read(http, "POST", f"{a.url}/chat/stream", json=payload, stop_after=40, headers=headers)
        assert on_a.stream_id is not None and not on_a.ended
        follower = Background(http, "GET", f"{b.url}/chat/stream/{on_a.stream_id}", params={"userId": "kill"})
        assert follower.started.wait(10)
        time.sleep(0.3)
        a.signal(signal.SIGKILL)
        a.wait(10)
        killed = time.monotonic()
        follower.join(20)
        assert follower.result is not None
        frames = follower.result.frames
        last = check_grammar(frames)
        assert last.event == "error" and last.data["error"]["code"] == "interrupted"
        assert last.data["error"]["requestId"] == "killed-1", "the request that started it, as on any error frame"
        assert time.monotonic() - killed < 10, "interrupted once the lease lapsed (a few seconds)"
        seen_on_a = tokens_of(on_a.frames)
        produced = tokens_of(frames)
        assert produced.startswith(seen_on_a) and len(produced) > len(seen_on_a), "nothing a user saw is lost"
        ids = frame_ids(frames)
        assert ids == list(range(1, len(ids) + 1))
        # The reply so far, rebuilt from the kept frames, is saved as partial (by B, which noticed).
        history = http.get(f"{b.url}/chat/history", params={"userId": "kill"}).json()["messages"]
        assert history[-1] == {"role": "assistant", "content": produced, "meta": {"partial": True}}
        # A later resume replays the same, then the same `interrupted`.
        again = http.get(f"{b.url}/chat/stream/{on_a.stream_id}", params={"userId": "kill"})
        assert again.content == follower.result.data
        assert b.output().count("lost its producer") == 1


@pytest.mark.redis
def test_the_per_user_stream_limit_counts_across_instances(tmp_path: Path, redis_options: dict[str, Any]) -> None:
    with (
        two_instances(tmp_path, redis_options, LEAN_CHAT_MAX_STREAMS_PER_USER="1") as (a, b),
        httpx.Client(timeout=20) as http,
    ):
        reader = Background(http, "POST", f"{a.url}/chat/stream", json=body("lim", targetChars=1500, tokenDelayMs=10))
        wait_for_token(reader)
        refused = http.post(f"{b.url}/chat/stream", json=body("lim", tokenDelayMs=0))
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert http.post(f"{b.url}/chat/stream", json=body("other", tokenDelayMs=0)).status_code == 200
        reader.join(20)
        assert http.post(f"{b.url}/chat/stream", json=body("lim", tokenDelayMs=0)).status_code == 200


def test_redis_unreachable_fails_the_start_saying_so(tmp_path: Path) -> None:
    environment = {"LEAN_CHAT_REDIS_URL": "redis://127.0.0.1:1/0"}
    server = ServerProcess(str(tmp_path / "x.sqlite3"), tmp_path / "x.log", environment, log_level="warning")
    try:
        with pytest.raises(RuntimeError, match="server exited"):
            server.wait_ready(timeout=20)
        assert "Redis is unreachable" in server.output()
    finally:
        server.stop()
