"""`x-request-id` on every answer (the client's when sane, else a new one), and in `error` frames it asked for."""

from __future__ import annotations

import re

import httpx
import pytest

from lean_chat.http.request_id import REQUEST_ID_HEADER, choose_request_id
from tests.support.apps import http_scope, in_process, stream_body
from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio

NEW_ID = re.compile(r"[0-9a-f]{32}")
KEY = "request-id-test-key"


def ids(response: httpx.Response) -> list[str]:
    """Every x-request-id header of the answer."""
    return response.headers.get_list("x-request-id")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("trace:1.2_3-4", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("has space", False),
        ("new\nline", False),
        ("é", False),
    ],
)
def test_sane_ids_are_kept_others_replaced(sent: str, kept: bool) -> None:
    scope = http_scope(headers=[(REQUEST_ID_HEADER, sent.encode("utf-8"))])
    chosen = choose_request_id(scope)
    assert (chosen == sent) is kept
    if not kept:
        assert NEW_ID.fullmatch(chosen)


async def test_every_answer_carries_one_id() -> None:
    async with in_process(sqlite_path="", api_keys=[KEY], max_body_bytes=500) as http:
        auth = {"authorization": f"Bearer {KEY}"}
        answers = [
            await http.post("/chat/stream", json=stream_body("u", "hi"), headers=auth),  # the stream lane
            await http.post("/chat/stream", json=stream_body("u", "hi")),  # 401 on the lane
            await http.post("/chat/stream", json={"userId": 1}, headers=auth),  # 422 on the lane
            await http.post("/chat/stream", json=stream_body("u", "x" * 600), headers=auth),  # 413 on the lane
            await http.get("/chat/history", params={"userId": "u"}, headers=auth),
            await http.get("/chat/history", params={"userId": "u"}),  # 401 through Starlette
            await http.get("/nowhere", headers=auth),  # 404
            await http.get("/healthz"),
        ]
        for response in answers:
            assert len(ids(response)) == 1, (response.request.url, response.headers)
            assert NEW_ID.fullmatch(ids(response)[0])
        assert len({ids(r)[0] for r in answers}) == len(answers)
        mine = {**auth, "x-request-id": "client-7"}
        for response in (
            await http.post("/chat/stream", json=stream_body("u", "hi"), headers=mine),
            await http.post("/chat/stream", json=stream_body("u", "hi"), headers={"x-request-id": "client-7"}),
            await http.get("/chat/conversations", params={"userId": "u"}, headers=mine),
            await http.get("/chat/conversations", params={"userId": "u"}, headers={"x-request-id": "client-7"}),
        ):
            assert ids(response) == ["client-7"]


async def test_error_frames_carry_the_clients_id_only() -> None:
    body = stream_body("u", "hi", model="gpt-4.1")  # no OpenAI key: the stream ends with `error`
    async with in_process(sqlite_path="") as http:
        mine = await http.post("/chat/stream", json=body, headers={"x-request-id": "req-42"})
        plain = await http.post("/chat/stream", json=body)
    error = check_grammar(parse_frames(mine.content))
    assert error.event == "error"
    assert error.data["error"] == {
        "message": "Provider 'openai' is not configured (missing API key).",
        "code": "provider_not_configured",
        "requestId": "req-42",
    }
    # A client that sends no id sees the same bytes as before (the id is in the header only).
    assert plain.content == (
        b'event: error\ndata: {"type":"error","error":{"message":"Provider \'openai\' is not configured '
        b'(missing API key).","code":"provider_not_configured"}}\n\n'
    )
    assert NEW_ID.fullmatch(plain.headers["x-request-id"])
