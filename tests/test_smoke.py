"""A first end-to-end turn in-process: mock stream, history saved."""

from __future__ import annotations

import httpx
import pytest

from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio


async def test_mock_turn_streams_and_is_saved(client: httpx.AsyncClient) -> None:
    body = {"userId": "u1", "messages": [{"role": "user", "content": "Hello"}], "params": {"mock": {"tokenDelayMs": 0}}}
    response = await client.post("/chat/stream", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    done = check_grammar(parse_frames(response.content))
    assert done.event == "done"
    assert done.data["provider"] == "mock:gpt-4.1"
    assert done.data["conversationId"] == "default:u1"
    history = (await client.get("/chat/history", params={"userId": "u1"})).json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
    assert history["messages"][1]["content"] == done.data["message"]["content"]
