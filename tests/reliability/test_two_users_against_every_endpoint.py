"""Two users against every endpoint: no one reads, changes or deletes another user's conversation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.apps import in_process, stream_body
from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio


async def snapshot(http: httpx.AsyncClient, user: str, conversation_ids: list[str]) -> dict[str, Any]:
    """Everything the endpoints show of one user's conversations."""
    listed = (await http.get("/chat/conversations", params={"userId": user})).json()
    return {
        "history": (await http.get("/chat/history", params={"userId": user})).json(),
        "list": listed,
        "conversations": [
            (await http.get("/chat/conversation", params={"userId": user, "conversationId": c})).json()
            for c in conversation_ids
        ],
    }


@pytest.mark.parametrize("persistent", [True, False], ids=["sqlite", "memory"])
async def test_two_users_against_every_endpoint(sqlite_path: str, persistent: bool) -> None:
    async with in_process(sqlite_path=sqlite_path if persistent else "") as http:
        # Alice owns a named conversation (explicit title) and her default one, both with a turn.
        created = await http.post(
            "/chat/conversation/create", json={"userId": "alice", "conversationId": "a-1", "title": "Alice's plans"}
        )
        assert created.status_code == 200
        for conversation in ("a-1", None):
            body = stream_body("alice", "my secret plans", conversation_id=conversation)
            done = check_grammar(parse_frames((await http.post("/chat/stream", json=body)).content))
            assert done.event == "done"
        alice_ids = ["a-1", "default:alice"]
        before = await snapshot(http, "alice", alice_ids)
        if persistent:
            assert len(before["list"]["conversations"]) == 2
            assert len(before["conversations"][0]["messages"]) == 2
        assert len(before["history"]["messages"]) == 2

        # Bob has one conversation of his own.
        assert (await http.post("/chat/stream", json=stream_body("bob", "bob's own", conversation_id="b-1"))).is_success

        for target in alice_ids:
            # create on a foreign id: 409, nothing changed
            taken = await http.post(
                "/chat/conversation/create", json={"userId": "bob", "conversationId": target, "title": "mine now"}
            )
            assert taken.status_code == 409
            assert isinstance(taken.json()["detail"], str)
            # read: empty
            read = await http.get("/chat/conversation", params={"userId": "bob", "conversationId": target})
            assert read.status_code == 200
            assert read.json() == {"userId": "bob", "conversationId": target, "messages": []}
            # delete: ok (idempotent) but no change
            deleted = await http.post("/chat/conversation/delete", json={"userId": "bob", "conversationId": target})
            assert deleted.status_code == 200
            # stream: error conversation_forbidden before any token
            body = stream_body("bob", "let me in", conversation_id=target)
            frames = parse_frames((await http.post("/chat/stream", json=body)).content)
            assert [f.event for f in frames] == ["error"]
            assert frames[0].data["error"]["code"] == "conversation_forbidden"
            # the same id with padding is the same id
            padded = stream_body("bob", "let me in", conversation_id=f"  {target} ")
            frames = parse_frames((await http.post("/chat/stream", json=padded)).content)
            assert frames[-1].data["error"]["code"] == "conversation_forbidden"

        # Bob's history and list show only his own.
        bob_history = (await http.get("/chat/history", params={"userId": "bob"})).json()
        assert bob_history == {"userId": "bob", "messages": []}
        bob_list = (await http.get("/chat/conversations", params={"userId": "bob"})).json()["conversations"]
        assert [c["conversationId"] for c in bob_list] == (["b-1"] if persistent else [])

        # clear: only Bob's own go.
        assert (await http.post("/chat/clear", json={"userId": "bob"})).status_code == 200
        assert (await http.get("/chat/conversations", params={"userId": "bob"})).json()["conversations"] == []
        bob_again = stream_body("bob", "fresh start", conversation_id="b-1")
        assert check_grammar(parse_frames((await http.post("/chat/stream", json=bob_again)).content)).event == "done"

        assert await snapshot(http, "alice", alice_ids) == before


async def test_default_conversation_ids_are_reserved(sqlite_path: str) -> None:
    """No one can claim another user's default conversation id before that user ever streams."""
    async with in_process(sqlite_path=sqlite_path) as http:
        taken = await http.post("/chat/conversation/create", json={"userId": "bob", "conversationId": "default:carol"})
        assert taken.status_code == 409
        body = stream_body("bob", "x", conversation_id="default:carol")
        frames = parse_frames((await http.post("/chat/stream", json=body)).content)
        assert frames[-1].data["error"]["code"] == "conversation_forbidden"
        carol = await http.post("/chat/stream", json=stream_body("carol", "hello"))
        assert check_grammar(parse_frames(carol.content)).data["conversationId"] == "default:carol"
