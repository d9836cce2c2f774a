"""The stream hub within one process: kept frames in memory, Stop and the stream count per process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from .base import KeptFrames, OrphanSaver, Running, StreamInfo, TooManyStreams

__all__ = ["MemoryHub"]


@dataclass
class _Stream:
    """One stream known to the hub: running, or ended and kept until its time is up."""

    info: StreamInfo
    kept: KeptFrames | None
    running: Running | None
    ended: bool = False


class MemoryHub:
    """Streams of this process; an ended resumable stream is kept `ttl_seconds`, then forgotten."""

    releases_at_once = True  # `release` never waits

    def __init__(self, ttl_seconds: float = 600.0, max_batches: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_batches = max_batches
        self.streams: dict[str, _Stream] = {}
        self.per_user: dict[str, int] = {}
        self.active_streams: dict[tuple[str, str], str] = {}
        self._expiries: dict[str, asyncio.TimerHandle] = {}

    async def open(self, on_orphan: OrphanSaver) -> None:
        """Nothing to start: a producer in this process cannot die without the process."""

    async def close(self) -> None:
        """Forget every kept stream."""
        for timer in self._expiries.values():
            timer.cancel()
        self._expiries.clear()
        self.streams.clear()

    async def claim(self, info: StreamInfo, per_user: int) -> None:
        """Take one of the user's slots and register the stream."""
        count = self.per_user.get(info.user_id, 0)
        if per_user > 0 and count >= per_user:
            raise TooManyStreams(per_user)
        self.per_user[info.user_id] = count + 1
        kept = KeptFrames(self.max_batches) if info.resume else None
        self.streams[info.stream_id] = _Stream(info, kept, None)
        self.active_streams[(info.user_id, info.conversation_id)] = info.stream_id

    async def bind(self, info: StreamInfo, running: Running) -> None:
        """Name the stream's producer."""
        stream = self.streams.get(info.stream_id)
        if stream is not None and not stream.ended:
            stream.info = info
            stream.running = running

    def keep(self, stream_id: str, first_id: int, last_id: int, data: bytes) -> None:
        """Keep one batch."""
        stream = self.streams.get(stream_id)
        if stream is not None and stream.kept is not None:
            stream.kept.add(first_id, last_id, data)

    async def end(self, stream_id: str, last_id: int, frame: bytes) -> None:
        """Keep the final frame."""
        stream = self.streams.get(stream_id)
        if stream is not None and stream.kept is not None:
            stream.kept.add(last_id, last_id, frame, end=True)

    async def release(self, info: StreamInfo) -> None:
        """Free the slot and the active mark; keep the frames until the TTL."""
        stream = self.streams.get(info.stream_id)
        if stream is None or stream.ended:
            return
        stream.ended = True
        stream.running = None
        left = self.per_user.get(info.user_id, 1) - 1
        if left > 0:
            self.per_user[info.user_id] = left
        else:
            self.per_user.pop(info.user_id, None)
        key = (info.user_id, info.conversation_id)
        if self.active_streams.get(key) == info.stream_id:
            del self.active_streams[key]
        if stream.kept is None:
            del self.streams[info.stream_id]
        else:
            loop = asyncio.get_running_loop()
            self._expiries[info.stream_id] = loop.call_later(self.ttl, self._expire, info.stream_id)

    def _expire(self, stream_id: str) -> None:
        """Forget an ended stream whose time is up."""
        self._expiries.pop(stream_id, None)
        self.streams.pop(stream_id, None)

    def running(self, stream_id: str) -> Running | None:
        """The stream when it is still producing."""
        stream = self.streams.get(stream_id)
        return stream.running if stream is not None else None

    async def lookup(self, stream_id: str) -> tuple[StreamInfo, bool] | None:
        """The stream and whether it has ended."""
        stream = self.streams.get(stream_id)
        return (stream.info, stream.ended) if stream is not None else None

    def follow(self, stream_id: str, after: int, idle: float) -> AsyncGenerator[bytes | None, None]:
        """The kept frames after `after`, then the live ones (the kept frames' own reader: no layer per frame)."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.kept is None:
            return _nothing()
        return stream.kept.follow(after, idle)

    async def last_id(self, stream_id: str) -> int:
        """The newest kept frame's id."""
        stream = self.streams.get(stream_id)
        return stream.kept.last_id if stream is not None and stream.kept is not None else 0

    async def readers_elsewhere(self, stream_id: str) -> bool:
        """There is no elsewhere."""
        return False

    async def stop(self, user_id: str, stream_id: str) -> bool:
        """Stop the user's running stream."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.running is None or stream.info.user_id != user_id:
            return False
        stream.running.stop_by_user()
        return True

    async def active(self, user_id: str, conversation_ids: list[str]) -> dict[str, str]:
        """The running stream of each conversation that has one."""
        found = {cid: self.active_streams.get((user_id, cid)) for cid in conversation_ids}
        return {cid: sid for cid, sid in found.items() if sid is not None}


async def _nothing() -> AsyncGenerator[bytes | None, None]:
    """A follow of a stream with nothing kept."""
    return
    yield
