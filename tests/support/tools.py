"""Tools for the tests: plain functions as an app would register them, and a `/chat/stream` body that calls them."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import msgspec

from lean_chat import ToolContext, ToolError, tool

__all__ = ["SlowTool", "add", "explode", "get_weather", "refuse", "tool_body", "unserializable"]


class Forecast(msgspec.Struct):
    """A tool's structured result."""

    city: str
    celsius: int


async def get_weather(city: str, unit: str = "c") -> Forecast:
    """The weather in a city (always 21 degrees)."""
    return Forecast(city, 21 if unit == "c" else 70)


def add(a: int, b: int) -> int:
    """Add two whole numbers (a sync tool: it runs in a thread)."""
    return a + b


async def explode(reason: str) -> str:
    """A tool that raises an exception of its own."""
    raise RuntimeError(f"secret internals: {reason}")


@tool(name="refuse")
async def refuse(why: str) -> str:
    """A tool that refuses with a message for the model."""
    raise ToolError(f"cannot do that: {why}")


async def unserializable() -> Any:
    """A tool whose result is not JSON."""
    return {"when": object()}


class SlowTool:
    """A tool that runs until cancelled; `started` is set once it runs, `cancelled` once it was cancelled."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.saw_context = threading.Event()

    def function(self) -> Any:
        """The tool function itself (named `slow`)."""

        async def slow(seconds: float, ctx: ToolContext) -> str:
            """Sleep for a while."""
            self.started.set()
            if ctx.user_id and ctx.conversation_id and ctx.tool_call_id:
                self.saw_context.set()
            try:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            return "slept"

        return slow


def tool_body(
    user_id: str,
    text: str,
    calls: list[dict[str, Any]],
    events: list[str] | None = None,
    reasoning: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """A `/chat/stream` body whose mock calls these tools in its first step (a fast mock; short reply)."""
    mock: dict[str, Any] = {"tokenDelayMs": 0, "targetChars": 250, "toolCalls": calls}
    if reasoning is not None:
        mock["reasoning"] = reasoning
    extra: dict[str, Any] = {"mock": mock, **params}
    if events is not None:
        extra["events"] = events
    return {"userId": user_id, "messages": [{"role": "user", "content": text}], "params": extra}
