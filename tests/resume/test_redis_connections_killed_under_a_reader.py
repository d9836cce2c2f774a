"""Regression: a reader following a stream produced on another instance ended silently when its Redis connection
was killed (no `done`, no `error`: a fetch client took the cut reply for a complete one). Now the reader reads on
from where it was; when Redis stays out of reach, it ends with one `error` of code `hub_unavailable`.

Faults are aimed at one instance's connections only (other tests share this Redis): killed by client id, found by
the client name that instance gives its connections, or, to keep Redis out of reach, by an ACL user of its own.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from tests.resume.reading import Read, body, frame_ids, read, tokens_of
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.services import needs

pytestmark = pytest.mark.redis

REDIS = "127.0.0.1:6379/0"


@pytest.fixture
def admin() -> Iterator[Any]:
    """A Redis client of the test's own, to kill connections and switch users."""
    import redis

    needs("redis")

    client = redis.Redis.from_url(f"redis://{REDIS}")
    yield client
    client.close()


class Follower(threading.Thread):
    """A resume request read to its end in a thread, the bytes kept as they come."""

    def __init__(self, url: str, params: dict[str, str], headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.params, self.headers = url, params, headers
        self.data = b""
        self.status: int | None = None
        self.reading = threading.Event()
        self.start()

    def run(self) -> None:
        with (
            httpx.Client(timeout=30) as http,
            http.stream("GET", self.url, params=self.params, headers=self.headers) as r,
        ):
            self.status = r.status_code
            for chunk in r.iter_bytes():
                self.data += chunk
                if b"event:" in self.data:
                    self.reading.set()
        self.reading.set()


Instances = Callable[[str], tuple[httpx.Client, str]]


@pytest.fixture
def two_instances(
    live_server: Callable[..., LiveServer], tmp_path: Path, redis_options: dict[str, Any]
) -> Iterator[Instances]:
    """A factory: instance A (the producer) and instance B, whose Redis URL is given: A's client, B's URL."""
    clients: list[httpx.Client] = []

    def start(b_url: str) -> tuple[httpx.Client, str]:
        common = {"sqlite_path": str(tmp_path / "chat.sqlite3"), "redis_prefix": redis_options["redis_prefix"]}
        a = live_server(create_app(redis_url=f"redis://{REDIS}", **common))
        b = live_server(create_app(redis_url=b_url, **common))
        clients.append(httpx.Client(base_url=a.url, timeout=30))
        return clients[-1], b.url

    yield start
    for client in clients:
        client.close()


def _start(http: httpx.Client, user_id: str) -> Read:
    """A paced resumable reply on A, left after its first frames (it goes on: another reader follows it)."""
    first = read(http, "POST", "/chat/stream", json=body(user_id, targetChars=700, tokenDelayMs=15), stop_after=3)
    assert first.stream_id is not None and not first.ended
    return first


def _blocked_reads(admin: Any, name: str) -> list[int]:
    """Ids of the connections named `name` that wait in XREAD now (the follower's)."""
    return [c["id"] for c in admin.client_list() if c["name"] == name and c["cmd"] == "xread" and "b" in c["flags"]]


@pytest.mark.load
def test_a_reader_whose_redis_connection_is_killed_reads_on_to_one_done(two_instances: Instances, admin: Any) -> None:
    name = f"lc_test_reader_{uuid.uuid4().hex[:12]}"
    http, b = two_instances(f"redis://{REDIS}?client_name={name}")
    first = _start(http, "killed")
    follower = Follower(
        f"{b}/chat/stream/{first.stream_id}", {"userId": "killed"}, {"Last-Event-ID": str(first.last_id)}
    )
    assert follower.reading.wait(10)
    killed: list[int] = []
    for _ in range(3):  # three kills, one after another: each read goes on from where it was
        deadline = time.monotonic() + 5
        while not (found := [i for i in _blocked_reads(admin, name) if i not in killed]):
            assert time.monotonic() < deadline and follower.is_alive(), "the follower never waited in XREAD again"
            time.sleep(0.005)
        admin.client_kill_filter(_id=found[0])
        killed.append(found[0])
        time.sleep(0.3)
    follower.join(30)
    assert not follower.is_alive() and follower.status == 200
    rest = parse_frames(follower.data)
    frames = first.frames + rest
    done = check_grammar(frames)  # the last frame is the one `done` (a silent end fails here)
    assert done.event == "done"
    assert tokens_of(frames) == done.data["message"]["content"]
    ids = frame_ids(frames)
    assert ids == list(range(1, len(ids) + 1)), "every frame once, in order, across the killed connections"


@pytest.mark.load
def test_a_reader_that_cannot_reach_redis_again_ends_with_one_hub_unavailable_error(
    two_instances: Instances, admin: Any
) -> None:
    user, password = f"lc_test_reader_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"], commands=["+@all"])
    try:
        http, b = two_instances(f"redis://{user}:{password}@{REDIS}")
        first = _start(http, "cut")
        url = f"{b}/chat/stream/{first.stream_id}"
        follower = Follower(url, {"userId": "cut"}, {"Last-Event-ID": str(first.last_id), "x-request-id": "follow-1"})
        assert follower.reading.wait(10)
        # B's user switched off, then its connections killed: B cannot reach Redis again.
        admin.acl_setuser(user, enabled=False)
        admin.execute_command("CLIENT", "KILL", "USER", user)
        cut = time.monotonic()
        follower.join(20)
        assert not follower.is_alive(), "the reader must end, not hang"
        waited = time.monotonic() - cut
        assert 1.0 < waited < 10, f"ended {waited:.1f} s after the cut: after a few tries, within seconds"
        seen = parse_frames(follower.data)
        last = check_grammar(first.frames + seen)  # one `error` at the end, nothing after it
        assert last.event == "error"
        assert last.data["error"]["code"] == "hub_unavailable" and last.data["error"]["requestId"] == "follow-1"
        ids = frame_ids(first.frames + seen)
        assert ids == list(range(1, len(ids) + 1)) and last.raw.count("id:") == 0, "the error has no id: resume after"
        # Redis back: the client resumes after the last id it saw and gets the rest of the reply.
        admin.acl_setuser(user, enabled=True)
        rest = read(
            http,
            "GET",
            f"/chat/stream/{first.stream_id}",
            params={"userId": "cut"},
            headers={"Last-Event-ID": str(ids[-1])},
        )
        frames = first.frames + [f for f in seen if f.event != "error"] + rest.frames
        done = check_grammar(frames)
        assert done.event == "done" and tokens_of(frames) == done.data["message"]["content"]
    finally:
        admin.acl_deluser(user)  # its connections are closed with it
