"""Graceful shutdown: on SIGTERM/SIGINT running streams get a grace period, then end with an `error` frame."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any, Protocol

__all__ = ["SHUTDOWN_CODE", "SHUTDOWN_MESSAGE", "Drain", "Stoppable"]

logger = logging.getLogger("lean_chat")

SHUTDOWN_MESSAGE = "The server is shutting down; the reply was cut short."
SHUTDOWN_CODE = "server_shutdown"

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stoppable(Protocol):
    """A running stream that can be told to end now with an `error` frame."""

    def stop(self, message: str, code: str) -> None:
        """End the stream soon with this error, saving what was produced."""
        ...


class Drain:
    """Tracks running streams; once draining starts, stops the ones still running after the grace period."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace = grace_seconds
        self.streams: set[Stoppable] = set()
        self.draining = False
        self._timer: asyncio.TimerHandle | None = None
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, stream: Stoppable) -> None:
        """Track a stream while it runs."""
        self.streams.add(stream)

    def discard(self, stream: Stoppable) -> None:
        """Forget a finished stream."""
        self.streams.discard(stream)

    def begin(self) -> None:
        """Start draining: streams still running after the grace period are stopped."""
        if self.draining:
            return
        self.draining = True
        loop = asyncio.get_running_loop()
        logger.info("shutting down: %d stream(s) running, %.1f s grace", len(self.streams), self.grace)
        self._timer = loop.call_later(max(0.0, self.grace), self.stop_all)

    def stop_all(self) -> None:
        """End every running stream now with the shutdown error."""
        for stream in list(self.streams):
            stream.stop(SHUTDOWN_MESSAGE, SHUTDOWN_CODE)

    def watch_signals(self) -> None:
        """Begin draining on SIGTERM/SIGINT, after the server's own handler (uvicorn's); main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):  # a server's handler (uvicorn's); default actions are left alone
                self._previous[sig] = previous
                signal.signal(sig, self._on_signal)

    def restore_signals(self) -> None:
        """Put back the handlers found by `watch_signals` (only where ours is still installed)."""
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous)
        self._previous.clear()
        if self._timer is not None:
            self._timer.cancel()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        """Pass the signal on, then start draining on the event loop."""
        previous = self._previous.get(sig)
        if callable(previous):
            previous(sig, frame)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.begin)
