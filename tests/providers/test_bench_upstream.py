"""The benchmark upstream's tool step is what OpenAI streams: our provider reads its two calls from it."""

from __future__ import annotations

import httpx
import pytest

from benchmarks.upstream import TOOL_CALLS, completion_events, tool_call_events, wants_tool_calls
from lean_chat.config import Settings
from lean_chat.providers import build_providers
from lean_chat.providers.base import ContextMessage, StreamCall
from lean_chat.providers.events import StepEnd, ToolCall

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("events", "calls"), [(tool_call_events(), list(TOOL_CALLS)), (completion_events(3), [])])
async def test_the_openai_provider_reads_the_benchmark_upstreams_steps(
    events: list[bytes], calls: list[object]
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(events))

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        settings = Settings(openai_api_key="k", openai_base_url="http://upstream.test/v1")
        provider = build_providers(settings, client)["openai"]
        items = [item async for item in provider.stream(StreamCall("gpt-4.1", [ContextMessage("user", "hi")]))]
    assert [(c.name, c.args_json) for c in items if isinstance(c, ToolCall)] == calls
    end = items[-1]
    assert isinstance(end, StepEnd) and end.finish_reason == ("tool-calls" if calls else "stop")


def test_only_a_first_step_that_offers_tools_gets_the_calls() -> None:
    assert wants_tool_calls(b'{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}')
    assert not wants_tool_calls(b'{"messages":[{"role":"user","content":"hi"}]}')
    assert not wants_tool_calls(b'{"messages":[{"role":"tool","tool_call_id":"c"}],"tools":[]}')
