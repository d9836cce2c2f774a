"""One turn over HTTP: the stream grammar, default model, provider string, usage, routing and its errors."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from lean_chat.frames import done_frame, error_frame
from lean_chat.http.chat_params import mock_knobs
from lean_chat.providers.base import ContextMessage, MockKnobs
from lean_chat.providers.mock import build_reply
from lean_chat.providers.parts import TextPart
from lean_chat.store.base import StoredMessage
from lean_chat.store.sqlite import SQLiteStore
from lean_chat.turn.chat import ChatService, ContextView
from lean_chat.turn.events import StepFinished
from lean_chat.turn.outcomes import Done, Failed, Stopped
from lean_chat.turn.streaming import outcome_frame
from lean_chat.turn.turn_request import TurnRequest
from tests.support.apps import in_process, stream_body, turn
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.upstreams import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio


async def test_stream_grammar_and_headers(client: httpx.AsyncClient) -> None:
    response = await turn(client, stream_body("g", "Hello there", targetChars=600))
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    text = response.text
    assert text.endswith("\n\n")
    frames = parse_frames(text)
    done = check_grammar(frames)
    assert done.event == "done"
    assert [f.event for f in frames].count("done") == 1
    assert "event: error" not in text
    tokens = [f.data["token"] for f in frames if f.event == "token"]
    assert len(tokens) > 100
    assert (
        "".join(tokens)
        == done.data["message"]["content"]
        == build_reply("Hello there", "mock", mock_knobs({"targetChars": 600}))
    )
    assert done.data["message"]["role"] == "assistant"
    assert done.data["type"] == "done"
    assert set(done.data) == {"type", "message", "provider", "usage", "conversationId"}


async def test_every_frame_is_event_then_data(client: httpx.AsyncClient) -> None:
    response = await turn(client, stream_body("g2", "x"))
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""
    for block in blocks[:-1]:
        event, data = block.split("\n")
        assert event.startswith("event: ") and data.startswith("data: {")


async def test_default_model_and_usage_estimate(client: httpx.AsyncClient) -> None:
    done = check_grammar(parse_frames((await turn(client, stream_body("d", "count me"))).content))
    content = done.data["message"]["content"]
    assert done.data["provider"] == "mock:gpt-4.1"
    assert done.data["usage"] == {"tokens": max(1, (len(content) + 3) // 4)}


async def test_configured_default_model(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path, default_model="mock-house") as http:
        done = check_grammar(parse_frames((await turn(http, stream_body("d", "hi"))).content))
        assert done.data["provider"] == "mock:mock-house"


@pytest.mark.parametrize(
    ("model", "provider"),
    [("mock-x", "mock:mock-x"), ("  mock-x  ", "mock:mock-x"), ("MOCK-Loud", "mock:MOCK-Loud"), ("", "mock:gpt-4.1")],
)
async def test_mock_models_name_themselves(client: httpx.AsyncClient, model: str, provider: str) -> None:
    done = check_grammar(parse_frames((await turn(client, stream_body("m", "hi", model=model))).content))
    assert done.event == "done"
    assert done.data["provider"] == provider


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("gpt-4.1", "openai"),
        ("o3-mini", "openai"),
        ("llama3:8b", "openai"),
        ("claude-3-5-sonnet", "anthropic"),
        (" Claude-Opus ", "anthropic"),
        ("gemini-1.5-pro", "gemini"),
        ("GEMINI-2.0-flash", "gemini"),
    ],
)
async def test_explicit_model_without_key_ends_in_error(sqlite_path: str, model: str, name: str) -> None:
    async with in_process(sqlite_path=sqlite_path) as http:
        frames = parse_frames((await turn(http, stream_body("r", "hi", model=model))).content)
        assert len(frames) == 1
        (error,) = frames
        assert error.event == "error"
        assert error.data == {
            "type": "error",
            "error": {
                "message": f"Provider '{name}' is not configured (missing API key).",
                "code": "provider_not_configured",
            },
        }


async def test_no_model_without_keys_falls_back_to_the_mock(client: httpx.AsyncClient) -> None:
    body = stream_body("f", "hi")
    del body["params"]["mock"]
    body["params"]["mock"] = {"tokenDelayMs": 0, "includePrefix": False}
    done = check_grammar(parse_frames((await turn(client, body)).content))
    assert done.event == "done"
    assert done.data["provider"] == "mock:gpt-4.1"
    assert done.data["message"]["content"].startswith("hi\n\n")


async def test_unknown_params_are_ignored(client: httpx.AsyncClient) -> None:
    body = stream_body("u", "hi")
    body["params"].update({"temperature": 0.2, "conversationId": None, "mock": {"tokenDelayMs": 0, "bogus": 1}})
    done = check_grammar(parse_frames((await turn(client, body)).content))
    assert done.event == "done"
    assert done.data["conversationId"] == "default:u"


async def test_explicit_model_error_keeps_the_users_message(client: httpx.AsyncClient) -> None:
    await turn(client, stream_body("kept", "please answer", model="gpt-4o"))
    history = (await client.get("/chat/history", params={"userId": "kept"})).json()
    assert history["messages"] == [{"role": "user", "content": "please answer", "meta": None}]


@pytest.mark.parametrize(("tokens", "reported"), [(["Hi", " there"], 9), ([], 0)])
async def test_reported_usage_wins_over_the_estimate(
    live_server: Callable[..., LiveServer], sqlite_path: str, tokens: list[str], reported: int
) -> None:
    fake = FakeOpenAI(Reply(tokens=tokens, input_tokens=5, output_tokens=reported))
    upstream = live_server(fake)
    async with in_process(sqlite_path=sqlite_path, **fake.options(upstream.url)) as http:
        done = check_grammar(parse_frames((await turn(http, stream_body("use", "hi", model="gpt-4.1"))).content))
    assert done.data["message"]["content"] == "".join(tokens)
    assert done.data["usage"] == {"tokens": reported, "inputTokens": 5, "outputTokens": reported}


async def test_long_reply_of_mixed_text_is_kept_whole(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    # The reply so far was once re-joined every 16 tokens; it is now one growing UTF-8 buffer: nothing may be lost.
    tokens = ["Grüße", " ", "🎉", "\u2028", "東京", "\n", '"q"', "\\", "\r\n", "\x85", "plain", "\U0010ffff"] * 2000
    fake = FakeOpenAI(Reply(tokens=tokens))
    upstream = live_server(fake)
    async with in_process(sqlite_path=sqlite_path, **fake.options(upstream.url)) as http:
        frames = parse_frames((await turn(http, stream_body("long", "go", model="gpt-4.1"))).content)
        history = (await http.get("/chat/history", params={"userId": "long"})).json()["messages"]
    done = check_grammar(frames)
    assert done.data["message"]["content"] == "".join(tokens)
    assert history[-1] == {"role": "assistant", "content": "".join(tokens), "meta": None}


def test_the_context_view_iterates_the_messages_it_indexes_every_time() -> None:
    stored = [StoredMessage("system", "be brief"), StoredMessage("user", "hi", {"k": 1})]
    stored.append(StoredMessage("assistant", "yo"))
    view = ContextView(stored)
    expected = [ContextMessage("system", "be brief"), ContextMessage("user", "hi"), ContextMessage("assistant", "yo")]
    assert list(view) == expected
    assert list(view) == expected  # walked again (a provider's body walks it twice, a retry again)
    assert [view[i] for i in range(len(view))] == expected and view[1:] == expected[1:]


async def test_a_turn_ends_with_an_outcome_value_and_the_stream_layer_frames_it(sqlite_path: str) -> None:
    store = SQLiteStore(sqlite_path)
    await store.open()
    try:
        asked = TurnRequest("o", "o-c", [StoredMessage("user", "hi", None)], mock=MockKnobs(target_chars=250))
        turn = await ChatService(store, {}).open_turn(asked)
        text = "".join([token async for batch in turn.events() if isinstance(batch, list) for token in batch])
        done = await turn.finish()
        tokens = (len(text) + 3) // 4
        steps = (StepFinished(0, "stop", {"tokens": tokens}),)
        assert done == Done(text, "mock:gpt-4.1", {"tokens": tokens}, "o-c", (TextPart(text),), steps)
        assert outcome_frame(done, "r-1") == done_frame(text, "mock:gpt-4.1", done.usage, "o-c")
        stopped = await turn.stop_reply()  # saved already: nothing saved twice, the outcome says stopped
        assert isinstance(stopped, Stopped) and outcome_frame(stopped, None).endswith(b',"stopped":true}\n\n')
        failed = Failed("went wrong", "provider_error")
        assert outcome_frame(failed, "r-1") == error_frame("went wrong", "provider_error", "r-1")
        assert [m.role for m in (await store.read("o", "o-c", None, None)).messages] == ["user", "assistant"]
    finally:
        await store.close()
