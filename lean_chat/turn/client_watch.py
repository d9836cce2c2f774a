"""Watching a streaming response's client: one task waits for its next ASGI message, to learn that it left."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import Message, Receive

__all__ = ["left", "watch_client"]


async def _next_message(receive: Receive) -> Message:
    """The next ASGI message from the client (a coroutine, so it can run as a task)."""
    return await receive()


def left(watcher: asyncio.Task[Message]) -> bool:
    """True once the server has told the watcher that the client went away."""
    if not watcher.done() or watcher.cancelled() or watcher.exception() is not None:
        return False
    return watcher.result().get("type") == "http.disconnect"


def watch_client(receive: Receive, on_gone: Callable[[], None]) -> asyncio.Task[Message]:
    """A task that waits for the client's next message and calls `on_gone` if it says the client went away (or the
    server is closing the connection); cancel it when the response ends."""
    watcher = asyncio.get_running_loop().create_task(_next_message(receive))

    def on_receive(task: asyncio.Task[Message]) -> None:
        if left(task):
            on_gone()

    watcher.add_done_callback(on_receive)
    return watcher
