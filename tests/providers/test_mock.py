"""The mock provider: deterministic text, knobs and clamps, tokens, prefix, greeting and pacing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from lean_chat.http.chat_params import mock_knobs, turn_request
from lean_chat.http.schema import ChatRequest
from lean_chat.providers.base import ContextMessage, StreamCall
from lean_chat.providers.mock import BURST_BATCH, GREETING, MockProvider, build_reply, split_tokens
from tests.support.apps import stream_body, turn
from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio


async def batches_of(params: dict[str, Any], *user_texts: str) -> list[list[str]]:
    """Every batch the mock yields for a call."""
    asked = turn_request(ChatRequest("u", [], params), None)
    call = StreamCall("gpt-4.1", [ContextMessage("user", t) for t in user_texts], asked.model, asked.mock)
    return [batch async for batch in MockProvider().stream(call) if isinstance(batch, list)]


async def tokens_over_http(http: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    """The token strings of one stream, checked against the grammar."""
    frames = parse_frames((await turn(http, body)).content)
    done = check_grammar(frames)
    assert done.event == "done"
    return [f.data["token"] for f in frames if f.event == "token"]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello world", ["Hello", " ", "world"]),
        ("a  b", ["a", " ", " ", "b"]),
        ("one\ntwo\t\tthree", ["one", "\n", "two", "\t", "\t", "three"]),
        ("\n\nx ", ["\n", "\n", "x", " "]),
        ("déjà-vu,🎉!", ["déjà-vu,🎉!"]),
        ("", []),
    ],
)
def test_split_tokens(text: str, tokens: list[str]) -> None:
    assert split_tokens(text) == tokens
    assert "".join(split_tokens(text)) == text


def test_every_whitespace_token_stands_alone() -> None:
    reply = build_reply("a question\twith\ttabs\nand lines", "mock", mock_knobs({"targetChars": 2000}))
    for token in split_tokens(reply):
        assert token in (" ", "\n", "\t") or not any(c in token for c in " \n\t")


def test_same_input_same_text() -> None:
    knobs = {"targetChars": 5000}
    assert build_reply("Tell me about rivers", "mock", mock_knobs(knobs)) == build_reply(
        "Tell me about rivers", "mock", mock_knobs(knobs)
    )


@pytest.mark.parametrize(
    ("asked", "floor"),
    [(None, 1200), (250, 250), (1000, 1000), (3000, 3000), (8000, 8000), (10, 250), (-5, 250), (10**6, 8000)],
)
def test_reply_length_follows_target_chars_within_the_clamp(asked: int | None, floor: int) -> None:
    knobs = {} if asked is None else {"targetChars": asked}
    reply = build_reply("hello", "mock", mock_knobs(knobs))
    assert len(reply) >= floor
    # It stops soon after reaching the target: no more than one extra sentence.
    assert len(reply) < floor + 200


def test_prefix_names_model_and_last_user_text() -> None:
    assert build_reply("  What is SSE?  ", "mock-x", mock_knobs({})).startswith("Mock reply (mock-x): What is SSE?\n\n")
    assert build_reply("What is SSE?", "mock", mock_knobs({"includePrefix": False})).startswith("What is SSE?\n\n")


async def test_greeting_when_last_user_text_is_empty() -> None:
    batches = await batches_of({"mock": {"tokenDelayMs": 0}}, "first question", "   ")
    text = "".join(t for b in batches for t in b)
    assert text.startswith(f"Mock reply (mock): {GREETING}\n\n")
    no_user = await batches_of({"mock": {"tokenDelayMs": 0}})
    assert "".join(t for b in no_user for t in b).startswith(f"Mock reply (mock): {GREETING}")


async def test_model_label_is_params_model_or_mock() -> None:
    labelled = await batches_of({"model": " mock-fast ", "mock": {"tokenDelayMs": 0}}, "hi")
    assert labelled[0][:5] == ["Mock", " ", "reply", " ", "(mock-fast):"]
    plain = await batches_of({"mock": {"tokenDelayMs": 0}}, "hi")
    assert plain[0][4] == "(mock):"


async def test_no_pause_gives_large_batches() -> None:
    batches = await batches_of({"mock": {"tokenDelayMs": 0, "targetChars": 4000}}, "go")
    assert len(batches) > 1
    assert all(len(b) == BURST_BATCH for b in batches[:-1])
    assert "".join(t for b in batches for t in b) == build_reply("go", "mock", mock_knobs({"targetChars": 4000}))


@pytest.mark.parametrize("knobs", [{"tokenDelayMs": -50}, {"tokenDelayMs": "0", "jitterMs": -3}])
async def test_negative_pacing_is_clamped_to_none(knobs: dict[str, Any]) -> None:
    batches = await batches_of({"mock": knobs}, "go")
    assert len(batches[0]) == min(BURST_BATCH, len(split_tokens(build_reply("go", "mock", mock_knobs({})))))


async def test_paced_tokens_come_in_small_batches_and_catch_up_after_a_late_wake_up() -> None:
    knobs = mock_knobs({"tokenDelayMs": 2, "targetChars": 250})
    call = StreamCall("gpt-4.1", [ContextMessage("user", "pace me")], mock=knobs)
    batches: list[list[str]] = []
    async for batch in MockProvider().stream(call):
        assert isinstance(batch, list)  # a plain reply: text only
        batches.append(batch)
        if len(batches) == 3:
            # Block the loop: every token that fell due meanwhile must come in the next batch.
            time.sleep(0.05)
    assert "".join(t for b in batches for t in b) == build_reply("pace me", "mock", mock_knobs({"targetChars": 250}))
    assert len(batches) > 3
    assert len(batches[3]) >= 5


async def test_jitter_keeps_text_and_tokens() -> None:
    knobs = {"targetChars": 250, "tokenDelayMs": 0, "jitterMs": 1}
    first = await batches_of({"mock": knobs}, "jitter")
    second = await batches_of({"mock": knobs}, "jitter")
    assert [t for b in first for t in b] == [t for b in second for t in b]
    assert "".join(t for b in first for t in b) == build_reply("jitter", "mock", mock_knobs(knobs))


async def test_over_http_same_request_same_tokens(client: httpx.AsyncClient) -> None:
    body = stream_body("det", "Explain\tstreaming\nplease", targetChars=900)
    first = await tokens_over_http(client, body)
    body["userId"] = "det2"
    second = await tokens_over_http(client, body)
    assert first == second
    assert first == split_tokens(build_reply("Explain\tstreaming\nplease", "mock", mock_knobs({"targetChars": 900})))
    assert len("".join(first)) >= 900


@pytest.mark.parametrize("jitter", [0, 2])
async def test_paced_tokens_are_the_replys_tokens_across_its_paragraphs(jitter: int) -> None:
    # The paced reply is kept as its pieces (head, paragraph breaks, sentences): no token may be split or merged.
    params = {"tokenDelayMs": 1, "jitterMs": jitter, "targetChars": 700}
    batches = await batches_of({"mock": params}, "many paragraphs, please")
    reply = build_reply("many paragraphs, please", "mock", mock_knobs(params))
    assert reply.count("\n\n") >= 3
    assert [t for b in batches for t in b] == split_tokens(reply)


async def test_a_paced_stream_closed_while_it_waits_cancels_its_timer() -> None:
    call = StreamCall("gpt-4.1", [ContextMessage("user", "stop me")], mock=mock_knobs({"tokenDelayMs": 10}))
    stream = MockProvider().stream(call)
    assert await stream.__anext__() == ["Mock"]
    pause = stream.__anext__()  # the next token is 10 ms away
    await stream.aclose()
    await asyncio.sleep(0.05)
    assert isinstance(pause, asyncio.Future) and not pause.done()  # its timer never fired
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
