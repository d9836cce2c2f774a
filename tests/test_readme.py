"""The README's example holds: its curl body gives the frames and `done` it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


async def test_curl_example_answers_as_shown(client: httpx.AsyncClient) -> None:
    body = json.loads(re.search(r"-d '(\{\"userId\":\"alice\".*?\})'\n", README).group(1))  # type: ignore[union-attr]
    shown = parse_frames(re.search(r"```\n(event: token\n.*?)```", README, re.S).group(1).replace("...\n\n", ""))  # type: ignore[union-attr]
    response = await client.post("/chat/stream", json=body)
    frames = parse_frames(response.content)
    done = check_grammar(frames)
    assert frames[0].data == shown[0].data
    expected = shown[-1].data
    assert done.data["provider"] == expected["provider"]
    assert done.data["usage"] == expected["usage"]
    assert done.data["conversationId"] == expected["conversationId"]
    assert done.data["message"]["content"].startswith(expected["message"]["content"].rstrip("."))
    history = (await client.get("/chat/history", params={"userId": "alice"})).json()["messages"]
    assert [m["role"] for m in history] == ["user", "assistant"]
