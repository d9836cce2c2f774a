"""OpenAI specifics: the request, refusals, the usage chunk's shapes, `[DONE]`, error objects, quota 429s."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lean_chat.config import Settings
from lean_chat.providers import build_providers
from lean_chat.providers.base import ContextMessage, ProviderError, StreamCall
from lean_chat.providers.events import ReasoningDelta, ToolCall
from lean_chat.providers.openai import OpenAIProvider
from lean_chat.providers.sse_parser import SSEParser
from lean_chat.providers.step_output import StepOutput
from tests.support.providers import ask, lean, tokens
from tests.support.upstreams import API_KEY, FakeUpstream, Reply

pytestmark = pytest.mark.anyio

TOKENS = ["Sure", ":", " 4"]


async def test_request_shape(openai_fake: FakeUpstream) -> None:
    async with lean(openai_fake) as http:
        await ask(http, "gpt-4o-mini", "what is 2+2?", system="Be brief.")
    seen = openai_fake.received[-1]
    assert seen.method == "POST" and seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {openai_fake.key}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "what is 2+2?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_usage_can_be_turned_off(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(Reply(tokens=TOKENS))
    async with lean(openai_fake, openai_include_usage=False) as http:
        _, last = await ask(http, "gpt-4.1")
    assert "stream_options" not in openai_fake.received[-1].body
    assert last.data["usage"] == {"tokens": (len("Sure: 4") + 3) // 4}


async def test_refusal_text_is_streamed(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(Reply(tokens=["I can't", " help with that."], refusal=True))
    async with lean(openai_fake) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert tokens(frames) == ["I can't", " help with that."]
    assert last.event == "done"


@pytest.mark.parametrize("shape", ["empty", "null", "missing"])
async def test_usage_chunk_with_choices_empty_null_or_missing(openai_fake: FakeUpstream, shape: str) -> None:
    openai_fake.reset(Reply(tokens=TOKENS, input_tokens=30, output_tokens=5, usage_choices=shape))
    async with lean(openai_fake) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert tokens(frames) == TOKENS
    assert last.data["usage"] == {"tokens": 5, "inputTokens": 30, "outputTokens": 5}


async def test_error_object_chunk_then_done_is_an_error(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(Reply(tokens=TOKENS, fail_after=1, error_message="out of KV cache", error_type="InternalError"))
    async with lean(openai_fake) as http:
        frames, last = await ask(http, "meta-llama/Llama-3-8B")
    assert tokens(frames) == ["Sure"]
    assert last.data["error"]["message"] == (
        "openai failed for model 'meta-llama/Llama-3-8B': out of KV cache (InternalError)"
    )


async def test_done_marker_without_finish_reason_is_a_success(openai_fake: FakeUpstream) -> None:
    chunk = 'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
    openai_fake.reset(Reply(raw=[chunk % "a", chunk % "b", "data: [DONE]\n\n"]))
    async with lean(openai_fake) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert tokens(frames) == ["a", "b"] and last.event == "done"


async def test_finish_reason_without_done_marker_is_a_success(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(
        Reply(
            raw=[
                'data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n',
                'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n',
            ]
        )
    )
    async with lean(openai_fake) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert tokens(frames) == ["a"] and last.event == "done"


async def test_unparseable_chunks_are_skipped(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(
        Reply(
            raw=[
                "data: {not json\n\n",
                'data: {"choices":"oops"}\n\n',
                'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n',
                "data: [DONE]\n\n",
            ]
        )
    )
    async with lean(openai_fake) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert tokens(frames) == ["ok"] and last.event == "done"


async def test_insufficient_quota_is_not_retried(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(
        Reply(status=429, error_message="You exceeded your current quota.", error_type="insufficient_quota"),
        Reply(tokens=TOKENS),
    )
    async with lean(openai_fake) as http:
        _, last = await ask(http, "gpt-4.1")
    assert last.event == "error"
    assert last.data["error"]["message"] == (
        "openai failed for model 'gpt-4.1': You exceeded your current quota. (HTTP 429, insufficient_quota)"
    )
    assert openai_fake.attempts == 1


async def test_a_plain_rate_limit_is_retried(openai_fake: FakeUpstream) -> None:
    openai_fake.reset(Reply(status=429, error_type="rate_limit_exceeded"), Reply(tokens=TOKENS))
    async with lean(openai_fake) as http:
        _, last = await ask(http, "gpt-4.1")
    assert last.event == "done" and openai_fake.attempts == 2


async def test_base_url_with_a_trailing_slash(openai_fake: FakeUpstream) -> None:
    assert openai_fake.url is not None
    async with lean(openai_fake, openai_base_url=openai_fake.url + "/v1/") as http:
        _, last = await ask(http, "gpt-4.1")
    assert last.event == "done"
    assert openai_fake.received[-1].path == "/v1/chat/completions"


async def test_a_non_json_error_page_still_gives_status(openai_fake: FakeUpstream) -> None:
    async with lean(openai_fake, openai_base_url=f"{openai_fake.url}/nowhere") as http:
        _, last = await ask(http, "gpt-4.1")
    assert last.event == "error"
    assert "HTTP 404" in last.data["error"]["message"]


async def test_done_marker_ends_the_reply_even_if_the_body_stays_open(openai_fake: FakeUpstream) -> None:
    events = 'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    openai_fake.reset(Reply(raw=[events], token_delay=5.0))
    async with lean(openai_fake) as http:
        frames, last = await ask(http, "gpt-4.1")
    assert tokens(frames) == ["x"] and last.event == "done"
    assert openai_fake.disconnected.wait(2)  # we hung up; the fake never got to end its body
    assert openai_fake.received[-1].disconnected_at is not None


async def answer_of(handler: Any) -> str:
    """The error detail the OpenAI provider gives for an upstream answered by `handler`."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        settings = Settings(openai_api_key=API_KEY, openai_base_url="http://compat.test/v1", openai_max_retries=0)
        provider = build_providers(settings, client)["openai"]
        with pytest.raises(ProviderError) as caught:
            async for _ in provider.stream(StreamCall("llama3", [ContextMessage("user", "hi")])):
                pass
    return caught.value.detail


async def test_a_bare_string_error_body_is_shown() -> None:
    detail = await answer_of(lambda request: httpx.Response(404, json={"error": "model 'llama3' not found"}))
    assert detail == "model 'llama3' not found (HTTP 404)"


async def test_a_bare_string_error_chunk_ends_the_stream() -> None:
    body = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"error":"engine crashed"}\n\n'
    detail = await answer_of(lambda request: httpx.Response(200, content=body))
    assert detail == "engine crashed"


async def test_a_key_at_the_cut_of_a_long_message_leaks_no_part_of_it() -> None:
    message = "x" * 490 + " " + API_KEY + " tail"
    detail = await answer_of(lambda request: httpx.Response(401, json={"error": {"message": message}}))
    assert API_KEY[:6] not in detail
    assert detail.startswith("x" * 490 + " [redact") and detail.endswith("(HTTP 401)")


_EVENTS = [
    b'data: {"choices":[{"delta":{"reasoning_content":"think"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"Sure"}}]}\n\n',
    b"data: not json\n\n",
    b'data: {"choices":[{"delta":{"content":" 4","tool_calls":[{"index":0,"id":"c1","function":{"name":"f"}}]}}]}\n\n',
    b'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}\n\n',
    b'data: {"choices":[{"delta":{},"finish_reason":"tool_calls"}]}\n\n',
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n',
    b"data: [DONE]\n\n",
    b'data: {"choices":[{"delta":{"content":"after the end"}}]}\n\n',
]


def _read_all(reads: list[bytes]) -> tuple[list[Any], list[int], Any, Any]:
    """What OpenAI's reader makes of these reads up to `[DONE]` (b"" last, as at a body's end); its last outcome."""
    provider = build_providers(Settings(openai_api_key=API_KEY), httpx.AsyncClient())["openai"]
    assert isinstance(provider, OpenAIProvider)
    call = StreamCall(model="gpt-4.1", messages=[])
    output = StepOutput()
    read = provider.reader(call, output, SSEParser())
    said: list[Any] = []
    outcomes: list[int] = []
    for data in [*reads, b""]:
        batch: list[str] = []
        outcomes.append(read(data, batch))
        for item in [*output.items, batch]:  # tokens flattened: reads batch them differently
            said += item if isinstance(item, list) else [item]
        output.items.clear()
        if outcomes[-1] == 2:  # DONE: the relay stops reading here
            break
    return said, outcomes[-1:], call.usage, output.finish()


async def test_a_read_of_one_whole_event_is_read_as_the_parser_reads_it() -> None:
    # One event per read takes the reader's own path (the parser not called); one read of all, or a byte per
    # read, goes through the parser: the same tokens, events, usage and end, and nothing after `[DONE]`.
    whole = b"".join(_EVENTS)
    one_per_read = _read_all(_EVENTS)
    assert one_per_read == _read_all([whole])
    assert one_per_read == _read_all([whole[i : i + 1] for i in range(len(whole))])
    said, outcomes, usage, end = one_per_read
    assert said == [ReasoningDelta("think"), "Sure", " 4", ToolCall("c1", "f", "{}")]
    assert outcomes == [2] and (usage.input_tokens, usage.output_tokens) == (3, 2)
    assert end.finish_reason == "tool-calls"
