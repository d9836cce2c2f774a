"""Gemini specifics: the key in a header only, the request shape, thoughts, repeated text, usage, filters, errors."""

from __future__ import annotations

import pytest

from lean_chat.providers.gemini import NewText
from tests.support.providers import ask, lean, tokens
from tests.support.upstreams import FakeUpstream, Reply

pytestmark = pytest.mark.anyio

TOKENS = ["Ciao", ",", " mondo"]


async def test_key_only_in_the_header_and_the_request_shape(gemini_fake: FakeUpstream) -> None:
    body = {
        "userId": "u1",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "bye"},
        ],
        "params": {"model": "gemini-2.5-flash"},
    }
    async with lean(gemini_fake) as http:
        response = await http.post("/chat/stream", json=body)
    assert response.status_code == 200
    seen = gemini_fake.received[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert seen.query == {"alt": ["sse"]}
    assert seen.headers["x-goog-api-key"] == gemini_fake.key
    assert gemini_fake.key not in seen.raw_query and gemini_fake.key not in seen.path
    assert seen.body == {
        "contents": [
            {"role": "user", "parts": [{"text": "hello"}]},
            {"role": "model", "parts": [{"text": "hi"}]},
            {"role": "user", "parts": [{"text": "bye"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
    }


async def test_thought_parts_are_skipped(gemini_fake: FakeUpstream) -> None:
    gemini_fake.reset(Reply(tokens=TOKENS, thoughts=["Let me think", " about this."]))
    async with lean(gemini_fake) as http:
        frames, last = await ask(http, "gemini-2.5-pro")
    assert tokens(frames) == TOKENS
    assert last.data["message"]["content"] == "Ciao, mondo"


async def test_a_server_that_repeats_the_text_so_far(gemini_fake: FakeUpstream) -> None:
    gemini_fake.reset(Reply(tokens=TOKENS, cumulative=True))
    async with lean(gemini_fake) as http:
        frames, last = await ask(http, "gemini-2.0-flash")
    assert tokens(frames) == TOKENS
    assert last.event == "done"


async def test_usage_from_the_last_metadata(gemini_fake: FakeUpstream) -> None:
    gemini_fake.reset(Reply(tokens=TOKENS, input_tokens=8, output_tokens=12))
    async with lean(gemini_fake) as http:
        _, last = await ask(http, "gemini-2.0-flash")
    assert last.data["usage"] == {"tokens": 12, "inputTokens": 8, "outputTokens": 12}


@pytest.mark.parametrize("reason", ["SAFETY", "OTHER", "PROHIBITED_CONTENT"])
async def test_blocked_prompt_is_content_filtered(gemini_fake: FakeUpstream, reason: str) -> None:
    gemini_fake.reset(Reply(block_reason=reason))
    async with lean(gemini_fake) as http:
        frames, last = await ask(http, "gemini-2.0-flash")
    assert tokens(frames) == []
    assert last.event == "error"
    assert last.data["error"]["code"] == "content_filtered"
    assert reason in last.data["error"]["message"]
    assert gemini_fake.attempts == 1


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"])
async def test_filtered_finish_reason_after_tokens(gemini_fake: FakeUpstream, reason: str) -> None:
    gemini_fake.reset(Reply(tokens=TOKENS, finish_reason=reason))
    async with lean(gemini_fake) as http:
        frames, last = await ask(http, "gemini-2.0-flash")
    assert tokens(frames) == TOKENS
    assert last.data["error"]["code"] == "content_filtered"
    assert last.data["error"]["message"].startswith("gemini failed for model 'gemini-2.0-flash': ")
    assert f"finishReason {reason}" in last.data["error"]["message"]


async def test_max_tokens_finish_is_a_normal_end(gemini_fake: FakeUpstream) -> None:
    gemini_fake.reset(Reply(tokens=TOKENS, finish_reason="MAX_TOKENS"))
    async with lean(gemini_fake) as http:
        _, last = await ask(http, "gemini-2.0-flash")
    assert last.event == "done"


async def test_error_chunk_ends_with_error(gemini_fake: FakeUpstream) -> None:
    gemini_fake.reset(Reply(tokens=TOKENS, fail_after=1, error_message="Internal error encountered."))
    async with lean(gemini_fake) as http:
        frames, last = await ask(http, "gemini-2.0-flash")
    assert tokens(frames) == ["Ciao"]
    assert last.data["error"]["message"] == (
        "gemini failed for model 'gemini-2.0-flash': Internal error encountered. (INTERNAL)"
    )


async def test_error_list_body_gives_message_and_status(gemini_fake: FakeUpstream) -> None:
    gemini_fake.reset(Reply(status=400, error_message="API key not valid. Please pass a valid API key."))
    async with lean(gemini_fake) as http:
        _, last = await ask(http, "gemini-2.0-flash")
    assert last.data["error"]["message"] == (
        "gemini failed for model 'gemini-2.0-flash': "
        "API key not valid. Please pass a valid API key. (HTTP 400, INVALID_ARGUMENT)"
    )


async def test_lf_line_ends_work_too(gemini_fake: FakeUpstream) -> None:
    gemini_fake.reset(Reply(tokens=TOKENS, crlf=False))
    async with lean(gemini_fake) as http:
        frames, _ = await ask(http, "gemini-2.0-flash")
    assert tokens(frames) == TOKENS


async def test_a_delta_that_repeats_the_text_so_far_is_kept(gemini_fake: FakeUpstream) -> None:
    chunk = 'data: {"candidates":[{"content":{"parts":[{"text":"%s"}]}%s}]}\r\n\r\n'
    gemini_fake.reset(Reply(raw=[chunk % ("Ha", ""), chunk % ("Ha", ""), chunk % ("!", ',"finishReason":"STOP"')]))
    async with lean(gemini_fake) as http:
        frames, last = await ask(http, "gemini-2.0-flash")
    assert tokens(frames) == ["Ha", "Ha", "!"]
    assert last.data["message"]["content"] == "HaHa!"


def test_new_text_of_deltas_and_of_repeating_servers() -> None:
    deltas = NewText()
    assert [deltas.take(t) for t in ["Ha", "Ha", "!", " ok"]] == ["Ha", "Ha", "!", " ok"]
    repeating = NewText()
    assert [repeating.take(t) for t in ["Hel", "Hello", "Hello!", "Hello!", ""]] == ["Hel", "lo", "!", "", ""]
    assert repeating.take(" Bye") == " Bye"  # a delta after all: kept, and the text so far grows
    assert repeating.take("Hello! Bye.") == "."
