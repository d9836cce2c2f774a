"""The stream hub: live streams shared between readers, Stop, and the per-user stream count.

A stream is claimed when it starts (owner, conversation, a producer lease, one of the user's slots) and
released when it ends. A resumable stream's frames are kept as batches, each carrying the ids of its first
and last frame; readers follow a stream from any id, in this process or (with Redis) on another instance.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Protocol

import msgspec

from ..frames import error_frame
from ..refusals import Refusal, TooManyStreams

__all__ = [
    "GAP_FRAME",
    "HUB_UNAVAILABLE_FRAME",
    "Hub",
    "HubUnavailable",
    "KeptFrames",
    "OrphanSaver",
    "Running",
    "StreamInfo",
    "TooManyStreams",
    "frames_after",
    "release_whole",
]

# A reader asked for frames older than the oldest one kept (the stream was longer than the bound).
GAP_FRAME = error_frame("The frames after this id are no longer kept.", "resume_gap")
# A reader on another instance than the producer lost the hub (Redis) and could not reach it again.
HUB_UNAVAILABLE_FRAME = error_frame(
    "The stream hub could not be reached; the reply may go on: resume after the last id seen.", "hub_unavailable"
)


class HubUnavailable(Refusal):
    """The stream hub (Redis) cannot be reached now: a stream is not started, a resume or Stop not served (503)."""

    status_code = 503
    detail = "The stream hub is unavailable; try again shortly."
    headers = {"Retry-After": "1"}


class StreamInfo(msgspec.Struct):
    """What the hub knows of a stream: who owns it, where its reply goes, whether its frames are kept."""

    stream_id: str
    user_id: str
    conversation_id: str
    title: str
    resume: bool
    life: int = 0  # the conversation's life the reply belongs to (store/base.py)
    request_id: str | None = None  # the client's own id of the request that started it, for its `error` frames
    reply_id: str | None = None  # the id its reply is saved under (`meta.id`), when the client named messages by id


class Running(Protocol):
    """A stream producing in this process."""

    def stop_by_user(self) -> None:
        """End the stream now with a `done` holding the text so far, marked stopped."""
        ...


# Saves the reply rebuilt from a dead producer's kept frames: (stream, content).
OrphanSaver = Callable[[StreamInfo, str], Awaitable[None]]


def frames_after(data: bytes, first_id: int, after: int) -> bytes:
    """The frames of a batch (ids from `first_id`) whose id is above `after`."""
    skip = after - first_id + 1
    if skip <= 0:
        return data
    # Frames end with a blank line and hold none inside: JSON escapes newlines, pings are never kept.
    parts = data.split(b"\n\n")
    return b"\n\n".join(parts[skip:-1]) + b"\n\n" if len(parts) - 1 > skip else b""


class KeptFrames:
    """A stream's kept batches in this process: at most `max_batches`, the oldest dropped past that."""

    def __init__(self, max_batches: int) -> None:
        self.max_batches = max(1, max_batches)
        # Per batch: its frames, first and last ids (flat lists: no tuple per batch for the collector to walk).
        self.frames: list[bytes] = []
        self.firsts: list[int] = []
        self.lasts: list[int] = []
        self.ended = False
        self.dropped = False
        self.offset = 0  # batches dropped from the front so far
        # Readers waiting for the next batch: a bare future each (no Event, no wait_for task: this is per batch).
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def last_id(self) -> int:
        """The id of the newest frame kept (0 when none)."""
        return self.lasts[-1] if self.lasts else 0

    def add(self, first_id: int, last_id: int, data: bytes, end: bool = False) -> None:
        """Keep one batch and wake the readers."""
        self.frames.append(data)
        self.firsts.append(first_id)
        self.lasts.append(last_id)
        if len(self.frames) > self.max_batches:
            cut = max(1, self.max_batches // 4)
            del self.frames[:cut], self.firsts[:cut], self.lasts[:cut]
            self.offset += cut
            self.dropped = True
        self.ended = self.ended or end
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def follow(self, after: int, idle: float) -> AsyncGenerator[bytes | None, None]:
        """Every frame after `after`, then the new ones until the end; None after `idle` seconds of quiet.

        A reader that is behind gets every batch kept so far in one piece (one write instead of many).
        """
        loop = asyncio.get_running_loop()
        # Where the reader is, counted from the first batch ever kept (batches dropped from the front shift the list).
        at = self.offset + bisect.bisect_right(self.lasts, after)
        quiet = _Quiet(loop, idle)
        try:
            while True:
                index = at - self.offset
                if index < 0 or (index == 0 and self.dropped and self.firsts[0] > after + 1):
                    yield GAP_FRAME
                    return
                count = len(self.frames)
                if index < count and self.lasts[index] <= after:
                    # Batches came in while the reader asked for an id past the end: skip to the first one that
                    # holds a frame after that id (its position never moves back).
                    index = bisect.bisect_right(self.lasts, after)
                    at = self.offset + index
                if index < count:
                    first_id, data = self.firsts[index], self.frames[index]
                    chunk = data if first_id > after else frames_after(data, first_id, after)
                    if index + 1 < count:
                        chunk = b"".join([chunk, *self.frames[index + 1 : count]])
                    after = self.lasts[count - 1]
                    at += count - index
                    yield chunk
                    continue
                if self.ended:
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append(waiter)
                if await quiet.wait(waiter):
                    yield None  # quiet for `idle` seconds
        finally:
            quiet.close()


class _Quiet:
    """One timer per reader (not one per wait) that wakes it when it has waited `idle` seconds for nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, idle: float) -> None:
        self.loop = loop
        self.idle = idle
        self.waiter: asyncio.Future[None] | None = None
        self.since = 0.0
        self.rang = False
        self.timer = loop.call_later(idle, self._tick) if idle > 0 else None

    async def wait(self, waiter: asyncio.Future[None]) -> bool:
        """Wait for the next batch; True when woken by the quiet instead."""
        self.waiter, self.since = waiter, self.loop.time()
        try:
            await waiter
        finally:
            self.waiter = None
        rang, self.rang = self.rang, False
        return rang

    def _tick(self) -> None:
        """Wake a reader that has waited long enough; look again when the next one could have."""
        now = self.loop.time()
        waiter = self.waiter
        if waiter is not None and not waiter.done() and now - self.since >= self.idle:
            self.rang = True
            self.since = now
            waiter.set_result(None)
        at = (self.since if self.waiter is not None else now) + self.idle
        self.timer = self.loop.call_at(max(at, now + 0.001), self._tick)

    def close(self) -> None:
        """Stop the timer."""
        if self.timer is not None:
            self.timer.cancel()


class Hub(Protocol):
    """Live streams: claims and the per-user count, kept frames, readers, Stop, the conversation's active stream."""

    # True when `release` never waits: then nothing can cut it short, and it needs no shield (a task) per stream.
    releases_at_once: bool

    async def open(self, on_orphan: OrphanSaver) -> None:
        """Start the hub's background work; `on_orphan` saves the reply of a stream whose producer died."""
        ...

    async def close(self) -> None:
        """Stop the background work and release the connections."""
        ...

    async def claim(self, info: StreamInfo, per_user: int) -> None:
        """Register a starting stream (owner, conversation, lease, a user slot); raise TooManyStreams."""
        ...

    async def bind(self, info: StreamInfo, running: Running) -> None:
        """Name the object that produces a claimed stream here (Stop reaches it); note its title and life."""
        ...

    def keep(self, stream_id: str, first_id: int, last_id: int, data: bytes) -> None:
        """Keep one batch of a resumable stream (returns at once; a shared copy is written behind)."""
        ...

    async def end(self, stream_id: str, last_id: int, frame: bytes) -> None:
        """Keep the final frame of a resumable stream; returns once every reader can see it."""
        ...

    async def release(self, info: StreamInfo) -> None:
        """The stream has ended: free its slot, its lease and the conversation's active mark."""
        ...

    def running(self, stream_id: str) -> Running | None:
        """The stream when it produces in this process."""
        ...

    async def lookup(self, stream_id: str) -> tuple[StreamInfo, bool] | None:
        """(the stream, True when it has ended), or None when unknown or expired."""
        ...

    def follow(self, stream_id: str, after: int, idle: float) -> AsyncGenerator[bytes | None, None]:
        """The kept frames after `after`, then live ones until the end; None after `idle` seconds of quiet."""
        ...

    async def last_id(self, stream_id: str) -> int:
        """The id of the newest kept frame of the stream (0 when none)."""
        ...

    async def readers_elsewhere(self, stream_id: str) -> bool:
        """True when another instance has a reader on the stream."""
        ...

    async def stop(self, user_id: str, stream_id: str) -> bool:
        """Tell the stream to stop wherever it runs; False when it is not the user's or not running."""
        ...

    async def active(self, user_id: str, conversation_ids: list[str]) -> dict[str, str]:
        """The running stream of each of these conversations that has one."""
        ...


def release_whole(hub: Hub, info: StreamInfo) -> Awaitable[None]:
    """`hub.release(info)`, run to its end even if the caller is cancelled meanwhile."""
    release = hub.release(info)
    return release if hub.releases_at_once else asyncio.shield(release)
