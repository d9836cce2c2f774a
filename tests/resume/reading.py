"""Reading resumable streams in tests: cut a connection after some frames, resume from the last id seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.frames import Frame, parse_frames

__all__ = ["Read", "body", "frame_ids", "read", "tokens_of"]


def body(user_id: str, text: str = "hello", resume: bool = True, **mock: Any) -> dict[str, Any]:
    """A `/chat/stream` body with a mock reply (paced by `tokenDelayMs`, default 5)."""
    params: dict[str, Any] = {"mock": {"tokenDelayMs": 5, **mock}}
    if resume:
        params["resume"] = True
    return {"userId": user_id, "messages": [{"role": "user", "content": text}], "params": params}


@dataclass
class Read:
    """What one connection carried: the status, the stream id header, the complete frames' bytes."""

    status: int
    stream_id: str | None
    data: bytes = b""
    frames: list[Frame] = field(default_factory=list)

    @property
    def last_id(self) -> int | None:
        """The id of the last frame read (None when none carried one)."""
        ids = frame_ids(self.frames)
        return ids[-1] if ids else None

    @property
    def ended(self) -> bool:
        """True when the stream's `done` or `error` was read."""
        return any(f.event in ("done", "error") for f in self.frames)


def frame_ids(frames: list[Frame]) -> list[int]:
    """The `id:` of each frame that has one."""
    ids = []
    for frame in frames:
        for line in frame.raw.split("\n"):
            if line.startswith("id:"):
                ids.append(int(line[3:].strip()))
    return ids


def tokens_of(frames: list[Frame]) -> str:
    """The tokens of these frames, joined."""
    return "".join(f.data["token"] for f in frames if f.event == "token")


def read(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    stop_after: int | None = None,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> Read:
    """Stream one request; with `stop_after`, cut the connection once that many event frames came."""
    with http.stream(method, url, headers=headers, **options) as response:
        result = Read(response.status_code, response.headers.get("x-stream-id"))
        buffer = b""
        for chunk in response.iter_bytes():
            buffer += chunk
            end = buffer.rfind(b"\n\n")
            if end < 0:
                continue
            complete, buffer = buffer[: end + 2], buffer[end + 2 :]
            result.data += complete
            result.frames = parse_frames(result.data)
            events = [f for f in result.frames if f.event is not None]
            if stop_after is not None and len(events) >= stop_after:
                break
        return result
