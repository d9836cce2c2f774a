"""The kept frames of a stream (hub/base.py) and the `id:` frames (frames.py), byte for byte."""

from __future__ import annotations

import asyncio

import pytest

from lean_chat.frames import done_frame, error_frame, token_frame, token_frames_with_ids, with_id
from lean_chat.hub.base import GAP_FRAME, KeptFrames, frames_after
from lean_chat.hub.redis import rebuild_reply


def test_token_frames_with_ids_are_todays_frames_with_an_id_line_each() -> None:
    tokens = ["Hello", " ", "wörld\n", "\u2028", '"q"']
    expected = b"".join(with_id(token_frame(t), i) for i, t in enumerate(tokens, 41))
    assert token_frames_with_ids(tokens, 41) == expected
    assert expected.startswith(b'event: token\ndata: {"type":"token","token":"Hello"}\nid: 41\n\n')
    assert b"\\u2028" in expected and "\u2028".encode() not in expected
    assert token_frames_with_ids([], 1) == b""


def test_a_stopped_done_frame_adds_stopped_true() -> None:
    done = done_frame("so far", "mock:m", {"tokens": 2}, "c")
    assert done_frame("so far", "mock:m", {"tokens": 2}, "c", stopped=True) == done[:-3] + b',"stopped":true}\n\n'
    assert with_id(error_frame("x", "interrupted"), 9).endswith(b'"code":"interrupted"}}\nid: 9\n\n')


def test_frames_after_cuts_a_batch_at_a_frame_boundary() -> None:
    batch = token_frames_with_ids(["a", "b", "c"], 5)
    assert frames_after(batch, 5, 4) == batch
    assert frames_after(batch, 5, 5) == token_frames_with_ids(["b", "c"], 6)
    assert frames_after(batch, 5, 6) == token_frames_with_ids(["c"], 7)
    assert frames_after(batch, 5, 7) == b""
    assert rebuild_reply([batch, token_frames_with_ids(["\n", "é"], 8)]) == "abc\né"


@pytest.mark.anyio
async def test_a_reader_behind_the_kept_window_gets_resume_gap() -> None:
    kept = KeptFrames(max_batches=8)
    for i in range(1, 21):
        kept.add(i, i, token_frames_with_ids([f"t{i}"], i))
    kept.add(21, 21, with_id(error_frame("end", "x"), 21), end=True)
    from_start = [chunk async for chunk in kept.follow(0, 0)]
    assert from_start == [GAP_FRAME]
    first_kept = kept.firsts[0]
    tail = b"".join([c async for c in kept.follow(first_kept - 1, 0) if c])
    assert tail.startswith(token_frames_with_ids([f"t{first_kept}"], first_kept)) and tail.endswith(b"id: 21\n\n")
    assert len(kept.frames) <= 8


@pytest.mark.anyio
async def test_readers_wake_on_each_batch_and_ping_when_quiet() -> None:
    kept = KeptFrames(max_batches=100)
    seen: list[bytes | None] = []

    async def reader() -> None:
        async for chunk in kept.follow(0, 0.05):
            seen.append(chunk)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.12)
    kept.add(1, 1, b"one\n\n")
    await asyncio.sleep(0.01)
    kept.add(2, 2, b"two\n\n", end=True)
    await asyncio.wait_for(task, 2)
    assert seen[:2] == [None, None] and seen[-2:] == [b"one\n\n", b"two\n\n"]
