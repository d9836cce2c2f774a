"""Reading a request body: its size limit, its time limit, the declared media type, and decoding it into a Struct."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import Receive, Scope

from ..headers import header
from ..refusals import BodyTimeout, BodyTooLarge, ValidationFailed
from ..turn.cancellation import take_back_cancel
from .auth import check_user
from .schema import decode_body

__all__ = ["BodyReader", "is_json"]


class _Deadlines:
    """Body reads past their deadline, cancelled by one coarse timer instead of a timer per request.

    A read costs a dict entry; the timer runs only while some read is in progress, a few times per timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.tick = min(1.0, max(0.01, seconds / 4))
        self.reading: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.armed: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, task: asyncio.Task[Any]) -> None:
        """Watch the task's read from now."""
        self.reading[task] = time.monotonic() + self.seconds
        loop = task.get_loop()
        if self.armed is None or self.loop is not loop:
            self.loop = loop
            self.armed = loop.call_later(self.tick, self._sweep)

    def stop(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching the task; True when it was cancelled for being late."""
        self.reading.pop(task, None)
        if task in self.expired:
            self.expired.discard(task)
            return True
        return False

    def _sweep(self) -> None:
        """Cancel the reads past their deadline; run again while any read is in progress."""
        now = time.monotonic()
        for task, deadline in list(self.reading.items()):
            if deadline <= now and task not in self.expired:
                self.expired.add(task)
                task.cancel()
        loop = self.loop
        self.armed = loop.call_later(self.tick, self._sweep) if self.reading and loop is not None else None


class BodyReader:
    """Reads request bodies: at most `limit` bytes (413), within `timeout` seconds (408; 0 waits forever)."""

    def __init__(self, limit: int, timeout: float = 0.0) -> None:
        self.limit = limit
        self.deadlines = _Deadlines(timeout) if timeout > 0 else None

    async def read(self, scope: Scope, receive: Receive) -> bytes:
        """The whole request body, refusing more than `limit` bytes (by header or by count) or a late one."""
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            raise BodyTooLarge(self.limit)
        deadlines = self.deadlines
        if deadlines is None:
            return await self._chunks(receive)
        task = asyncio.current_task()
        assert task is not None
        deadlines.start(task)
        try:
            return await self._chunks(receive)
        except asyncio.CancelledError:
            if not deadlines.stop(task):
                raise
            if take_back_cancel(task) > 0:
                raise  # cancelled for another reason as well
            raise BodyTimeout() from None
        finally:
            deadlines.stop(task)

    async def _chunks(self, receive: Receive) -> bytes:
        """The body's chunks joined, refusing more than `limit` bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise BodyTooLarge(self.limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def decode(self, scope: Scope, receive: Receive, kind: type[Any]) -> Any:
        """Read and validate a JSON body of the given kind, from the caller it claims to be."""
        value = decode_body(await self.read_json(scope, receive), kind)
        check_user(scope, value.userId)
        return value

    async def read_json(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, refused (422) when it is declared as something other than JSON."""
        body = await self.read(scope, receive)
        if body and not is_json(scope):
            text = body.decode("utf-8", "replace")
            raise ValidationFailed(
                [
                    {
                        "type": "model_attributes_type",
                        "loc": ["body"],
                        "msg": "Input should be a valid dictionary or object to extract fields from",
                        "input": text,
                    }
                ]
            )
        return body


def is_json(scope: Scope) -> bool:
    """True when the body is declared as JSON (or not declared at all)."""
    value = header(scope, b"content-type")
    if value is None:
        return True
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")
