"""Provider-level tests' helpers: one step streamed straight from a provider against a fake upstream, summed up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from lean_chat.config import Settings
from lean_chat.providers import build_providers
from lean_chat.providers.base import ContextMessage, Provider, ReasoningOptions, StreamCall, ToolSpec
from lean_chat.providers.events import ReasoningDelta, StepEnd, ToolCall
from tests.support.upstreams import FakeUpstream, Reply

__all__ = ["Streamed", "WEATHER", "provider_for", "stream_step"]

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def provider_for(fake: FakeUpstream, client: httpx.AsyncClient, **settings: Any) -> Provider:
    """The provider build_providers makes for the fake's name, pointed at it."""
    options = Settings(**fake.options("http://upstream.test"), **settings)
    return build_providers(options, client)[fake.name]


@dataclass
class Streamed:
    """What one step streamed: every item in order, and its text, reasoning, calls and end."""

    items: list[Any] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The visible text."""
        return "".join(t for item in self.items if isinstance(item, list) for t in item)

    @property
    def reasoning(self) -> str:
        """The reasoning text."""
        return "".join(item.text for item in self.items if isinstance(item, ReasoningDelta))

    @property
    def calls(self) -> list[ToolCall]:
        """The complete tool calls."""
        return [item for item in self.items if isinstance(item, ToolCall)]

    @property
    def end(self) -> StepEnd:
        """The step's end (yielded last)."""
        assert isinstance(self.items[-1], StepEnd), self.items[-1:]
        return self.items[-1]

    def kinds(self) -> list[str]:
        """Each item's kind in order, runs of the same kind joined: `text`, `reasoning`, `call`, `end`."""
        names = {list: "text", ReasoningDelta: "reasoning", ToolCall: "call", StepEnd: "end"}
        out: list[str] = []
        for item in self.items:
            name = names[type(item)]
            if name == "call" or not out or out[-1] != name:
                out.append(name)
        return out


async def stream_step(
    fake: FakeUpstream,
    *replies: Reply,
    model: str,
    messages: Sequence[ContextMessage] = (ContextMessage("user", "hi"),),
    tools: Sequence[ToolSpec] = (WEATHER,),
    reasoning: ReasoningOptions | None = None,
    into: Streamed | None = None,
    **settings: Any,
) -> Streamed:
    """One step from the fake's provider over its MockTransport (each planned write one read); raises as it does.

    `into` collects the items (to read what came before a failure).
    """
    if replies:
        fake.reset(*replies)
    fake.url = "http://upstream.test"
    call = StreamCall(model, list(messages), tools=list(tools), reasoning=reasoning)
    streamed = Streamed() if into is None else into
    async with httpx.AsyncClient(transport=fake.transport()) as client:
        async for item in provider_for(fake, client, **settings).stream(call):
            streamed.items.append(item)
    return streamed
