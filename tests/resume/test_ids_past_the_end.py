"""Regression: a `Last-Event-ID` past the end of a running stream replayed frames before it (the memory reader's
position moved back to the newest batch); a resume gives the frames after the id and nothing else, on every hub."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from lean_chat.hub.base import KeptFrames
from tests.resume.reading import body, frame_ids, read
from tests.support.frames import check_grammar, parse_frames

Serve = Callable[..., httpx.Client]

FAR = [10**17, 10**18 - 1]  # far past any end, and the largest id a resume accepts (18 digits)
REFUSED = [str(2**63), str(2**64 + 1), "9" * 40, "1" * 4301]  # more than 18 digits: refused (422) on every hub


@pytest.mark.anyio
@pytest.mark.parametrize("after", [12, *FAR])
async def test_kept_frames_give_nothing_before_an_id_past_their_end(after: int) -> None:
    kept = KeptFrames(max_batches=100)
    kept.add(1, 3, b"".join(b"f%d\n\n" % i for i in range(1, 4)))
    seen: list[bytes | None] = []

    async def reader() -> None:
        async for chunk in kept.follow(after, 0):
            seen.append(chunk)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.01)
    for i in range(4, 20):  # single frames, some of them arriving before the reader wakes
        kept.add(i, i, b"f%d\n\n" % i)
        if i % 3 == 0:
            await asyncio.sleep(0.005)
    kept.add(20, 20, b"f20\n\n", end=True)
    await asyncio.wait_for(task, 2)
    expected = b"".join(b"f%d\n\n" % i for i in range(after + 1, 21))
    assert b"".join(chunk for chunk in seen if chunk) == expected


def _instances(serve: Serve, hub_options: dict[str, Any]) -> list[httpx.Client]:
    """The producing instance, and with Redis a second one on the same keys (which reads from Redis)."""
    return [serve(), serve()] if hub_options else [serve()]


def _get(base_url: str, stream_id: str, user_id: str, after: str) -> httpx.Response:
    """One complete resume request with this `Last-Event-ID` (a client of its own: readers run in threads)."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        return http.get(f"/chat/stream/{stream_id}", params={"userId": user_id}, headers={"Last-Event-ID": after})


def _events(response: httpx.Response) -> list[Any]:
    """The event frames of an answer (pings left out)."""
    return [f for f in parse_frames(response.content) if f.event is not None]


def test_a_resume_past_the_end_of_a_running_stream_gives_only_frames_after_the_id(
    serve: Serve, hub_options: dict[str, Any]
) -> None:
    instances = _instances(serve, hub_options)
    producer = instances[0]
    first = read(producer, "POST", "/chat/stream", json=body("far", targetChars=1500), stop_after=3)
    assert first.stream_id is not None and not first.ended
    stream_id = first.stream_id
    near = 300  # past the frames produced when the readers ask (300 tokens take at least 1.5 s), before the end
    asks = [(str(http.base_url), str(after)) for http in instances for after in [near, *FAR, *REFUSED]]
    with ThreadPoolExecutor(len(asks)) as pool:
        answers = list(pool.map(lambda ask: _get(ask[0], stream_id, "far", ask[1]), asks))
    whole = read(producer, "GET", f"/chat/stream/{first.stream_id}", params={"userId": "far"})
    last = check_grammar(whole.frames)
    assert last.event == "done"
    end = frame_ids(whole.frames)[-1]
    assert end > near
    for (url, after), answer in zip(asks, answers, strict=True):
        if after in REFUSED:
            assert answer.status_code == 422, (url, after, answer.status_code)
            assert answer.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]
            continue
        assert answer.status_code == 200, (url, after, answer.status_code)
        ids = frame_ids(_events(answer))
        expected = list(range(int(after) + 1, end + 1))
        assert ids == expected, (url, after, ids[:5], len(ids))
    # Once it has ended: the frames after a near id, and 204 for an id past the end.
    for http in instances:
        tail = http.get(f"/chat/stream/{first.stream_id}", params={"userId": "far"}, headers={"Last-Event-ID": "299"})
        assert frame_ids(_events(tail)) == list(range(300, end + 1))
        for far in FAR:
            headers = {"Last-Event-ID": str(far)}
            finished = http.get(f"/chat/stream/{first.stream_id}", params={"userId": "far"}, headers=headers)
            assert finished.status_code == 204 and finished.content == b""
        for refused in REFUSED:
            params = {"userId": "far", "lastEventId": refused}
            assert http.get(f"/chat/stream/{first.stream_id}", params=params).status_code == 422
