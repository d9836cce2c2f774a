"""Bad requests over HTTP: FastAPI-shaped 422 bodies, 413 over the body limit, 404 and 405; never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from tests.support.apps import in_process
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.anyio

STR_MSG = "Input should be a valid string"
OBJ_MSG = "Input should be a valid dictionary or object to extract fields from"
ROLE_MSG = "Input should be 'system', 'user' or 'assistant'"
INT_MSG = "Input should be a valid integer, unable to parse string as an integer"

# (path, body, expected (type, loc) pairs in order)
BAD_BODIES: list[tuple[str, bytes, list[tuple[str, list[Any]]]]] = [
    ("/chat/stream", b"", [("missing", ["body"])]),
    ("/chat/stream", b"{", [("json_invalid", ["body", 1])]),
    ("/chat/stream", b'{"userId":"u","messages":[]} x', [("json_invalid", ["body", 29])]),
    ("/chat/stream", b"[]", [("model_attributes_type", ["body"])]),
    ("/chat/stream", b"null", [("model_attributes_type", ["body"])]),
    ("/chat/stream", b"{}", [("missing", ["body", "userId"]), ("missing", ["body", "messages"])]),
    ("/chat/stream", b'{"userId":"","messages":[]}', [("string_too_short", ["body", "userId"])]),
    ("/chat/stream", b'{"userId":7,"messages":[]}', [("string_type", ["body", "userId"])]),
    ("/chat/stream", b'{"userId":"u","messages":{}}', [("list_type", ["body", "messages"])]),
    ("/chat/stream", b'{"userId":"u","messages":"hi"}', [("list_type", ["body", "messages"])]),
    ("/chat/stream", b'{"userId":"u","messages":[1]}', [("model_attributes_type", ["body", "messages", 0])]),
    (
        "/chat/stream",
        b'{"userId":"u","messages":[{"role":"bot","content":"x"}]}',
        [("literal_error", ["body", "messages", 0, "role"])],
    ),
    (
        "/chat/stream",
        b'{"userId":"u","messages":[{"role":"user","content":"ok"},{"role":"user"}]}',
        [("missing", ["body", "messages", 1, "content"])],
    ),
    (
        "/chat/stream",
        b'{"userId":"u","messages":[{"role":"user","content":5}]}',
        [("string_type", ["body", "messages", 0, "content"])],
    ),
    (
        "/chat/stream",
        b'{"userId":"u","messages":[{"role":"user","content":"x","meta":[]}]}',
        [("dict_type", ["body", "messages", 0, "meta"])],
    ),
    ("/chat/stream", b'{"userId":"u","messages":[],"params":[]}', [("dict_type", ["body", "params"])]),
    ("/chat/stream", b'{"userId":"u\\u0000","messages":[]}', [("value_error", ["body", "userId"])]),
    ("/chat/stop", b'{"userId":"u","streamId":"\\u0000"}', [("value_error", ["body", "streamId"])]),
    ("/chat/clear", b"{}", [("missing", ["body", "userId"])]),
    ("/chat/clear", b'{"userId":""}', [("string_too_short", ["body", "userId"])]),
    ("/chat/clear", b'{"userId":null}', [("string_type", ["body", "userId"])]),
    ("/chat/clear", b'"alice"', [("model_attributes_type", ["body"])]),
    ("/chat/conversation/create", b"{}", [("missing", ["body", "userId"])]),
    (
        "/chat/conversation/create",
        b'{"userId":"u","conversationId":5,"title":[]}',
        [("string_type", ["body", "conversationId"]), ("string_type", ["body", "title"])],
    ),
    ("/chat/conversation/create", b"{bad", [("json_invalid", ["body", 1])]),
    ("/chat/conversation/delete", b'{"userId":"u"}', [("missing", ["body", "conversationId"])]),
    (
        "/chat/conversation/delete",
        b'{"userId":"u","conversationId":""}',
        [("string_too_short", ["body", "conversationId"])],
    ),
    (
        "/chat/conversation/delete",
        b'{"conversationId":3}',
        [("missing", ["body", "userId"]), ("string_type", ["body", "conversationId"])],
    ),
]

BAD_QUERIES: list[tuple[str, list[tuple[str, list[Any]]]]] = [
    ("/chat/history?userId=a%00", [("value_error", ["query", "userId"])]),
    ("/chat/history?userId=" + "u" * 257, [("string_too_long", ["query", "userId"])]),
    ("/chat/conversation?userId=u&conversationId=%00", [("value_error", ["query", "conversationId"])]),
    ("/chat/stream/abc?userId=" + "u" * 257, [("string_too_long", ["query", "userId"])]),
    ("/chat/history", [("missing", ["query", "userId"])]),
    ("/chat/conversations", [("missing", ["query", "userId"])]),
    ("/chat/conversations?userId=u&limit=abc", [("int_parsing", ["query", "limit"])]),
    ("/chat/conversations?userId=u&limit=1.5", [("int_parsing", ["query", "limit"])]),
    ("/chat/conversations?userId=u&limit=", [("int_parsing", ["query", "limit"])]),
    ("/chat/conversations?limit=x", [("missing", ["query", "userId"]), ("int_parsing", ["query", "limit"])]),
    ("/chat/conversation", [("missing", ["query", "userId"]), ("missing", ["query", "conversationId"])]),
    ("/chat/conversation?userId=u", [("missing", ["query", "conversationId"])]),
]


@pytest.fixture
async def lean(sqlite_path: str) -> AsyncIterator[httpx.AsyncClient]:
    """lean_chat in-process, SQLite history."""
    async with in_process(sqlite_path=sqlite_path) as http:
        yield http


@pytest.fixture
async def reference(tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The reference package in-process (FastAPI), for side-by-side answers."""
    from fastapi_ai_chat import create_app as reference_app

    async with in_process(reference_app(sqlite_path=str(tmp_path / "reference.sqlite3"))) as http:
        yield http


def check_detail(response: httpx.Response, expected: list[tuple[str, list[Any]]]) -> None:
    """A 422 whose detail entries have these types and locations, each with a message and the input."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [(d["type"], d["loc"]) for d in detail] == expected
    for entry in detail:
        assert isinstance(entry["msg"], str) and entry["msg"]
        assert "input" in entry


@pytest.mark.parametrize(("path", "body", "expected"), BAD_BODIES)
async def test_bad_body_gets_422(
    lean: httpx.AsyncClient, path: str, body: bytes, expected: list[tuple[str, list[Any]]]
) -> None:
    response = await lean.post(path, content=body, headers={"content-type": "application/json"})
    check_detail(response, expected)


@pytest.mark.parametrize(("path", "expected"), BAD_QUERIES)
async def test_bad_query_gets_422(lean: httpx.AsyncClient, path: str, expected: list[tuple[str, list[Any]]]) -> None:
    check_detail(await lean.get(path), expected)


async def test_messages_of_common_errors(lean: httpx.AsyncClient) -> None:
    response = await lean.post("/chat/stream", json={"userId": 1, "messages": [{"role": "bot", "content": "x"}, 2]})
    assert response.json() == {
        "detail": [
            {"type": "string_type", "loc": ["body", "userId"], "msg": STR_MSG, "input": 1},
            {
                "type": "literal_error",
                "loc": ["body", "messages", 0, "role"],
                "msg": ROLE_MSG,
                "input": "bot",
                "ctx": {"expected": "'system', 'user' or 'assistant'"},
            },
            {"type": "model_attributes_type", "loc": ["body", "messages", 1], "msg": OBJ_MSG, "input": 2},
        ]
    }
    query = await lean.get("/chat/conversations", params={"userId": "u", "limit": "ten"})
    assert query.json() == {
        "detail": [{"type": "int_parsing", "loc": ["query", "limit"], "msg": INT_MSG, "input": "ten"}]
    }


SIDE_BY_SIDE: list[tuple[str, str, bytes | None, str]] = [
    ("POST", "/chat/stream", b"", "application/json"),
    ("POST", "/chat/stream", b'{"userId": 1', "application/json"),
    ("POST", "/chat/stream", b"  ", "application/json"),
    ("POST", "/chat/stream", b'{"userId":"","messages":[1,{"role":"bot","content":3,"meta":[]}]}', "application/json"),
    ("POST", "/chat/stream", b'{"userId":1.5,"messages":"abc","params":"x"}', "application/json"),
    ("POST", "/chat/stream", b'{"userId":"u","messages":[]}', "text/plain"),
    ("POST", "/chat/stream", b'{"userId":"\xff","messages":[]}', "application/json"),
    ("POST", "/chat/clear", b'{"userId":[]}', "application/json"),
    ("POST", "/chat/conversation/create", b'{"userId":"","conversationId":5}', "application/json"),
    ("POST", "/chat/conversation/delete", b'{"userId":"u","conversationId":null}', "application/json"),
    ("GET", "/chat/conversations?limit=x", None, ""),
    ("GET", "/chat/conversations?userId=u&limit=%EF%BC%95", None, ""),
    ("GET", "/chat/conversation", None, ""),
    ("GET", "/no/such/path", None, ""),
    ("GET", "/chat/stream", None, ""),
    ("POST", "/chat/history", None, ""),
]


@pytest.mark.parametrize(("method", "path", "body", "content_type"), SIDE_BY_SIDE)
async def test_same_answer_as_the_reference(
    lean: httpx.AsyncClient,
    reference: httpx.AsyncClient,
    method: str,
    path: str,
    body: bytes | None,
    content_type: str,
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    ours = await lean.request(method, path, content=body, headers=headers)
    theirs = await reference.request(method, path, content=body, headers=headers)
    assert ours.status_code == theirs.status_code
    assert ours.json() == theirs.json()
    assert ours.headers["content-type"] == "application/json"


async def test_invalid_utf8_is_a_400(lean: httpx.AsyncClient) -> None:
    response = await lean.post(
        "/chat/clear", content=b'{"userId":"\xfe"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "There was an error parsing the body"}


async def test_unknown_path_is_404(lean: httpx.AsyncClient) -> None:
    response = await lean.get("/chat/nothing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/chat/stream", "POST"),
        ("PUT", "/chat/clear", "POST"),
        ("POST", "/chat/history", "GET"),
        ("DELETE", "/chat/conversations", "GET"),
        ("GET", "/chat/conversation/delete", "POST"),
    ],
)
async def test_wrong_method_is_405(lean: httpx.AsyncClient, method: str, path: str, allowed: str) -> None:
    response = await lean.request(method, path)
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert allowed in response.headers["allow"]


# Body limits


def padded(size: int) -> bytes:
    """A valid `/chat/clear` body padded with spaces to exactly `size` bytes."""
    core = b'{"userId":"alice"}'
    return core + b" " * (size - len(core))


async def test_body_over_the_default_limit_is_413_by_content_length(lean: httpx.AsyncClient) -> None:
    response = await lean.post(
        "/chat/clear", content=padded(1024 * 1024 + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body is too large (limit 1048576 bytes)."}


async def test_body_at_the_default_limit_is_read(lean: httpx.AsyncClient) -> None:
    response = await lean.post("/chat/clear", content=padded(1024 * 1024), headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "userId": "alice"}


async def test_chunked_body_over_a_configured_limit_is_413(sqlite_path: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"userId":"alice","messages":['
        for _ in range(40):
            yield b'{"role":"user","content":"' + b"x" * 50 + b'"},'
        yield b'{"role":"user","content":"end"}]}'

    async with in_process(sqlite_path=sqlite_path, max_body_bytes=1000) as http:
        response = await http.post("/chat/stream", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        # Nothing of the refused request was kept.
        history = await http.get("/chat/history", params={"userId": "alice"})
        assert history.json()["messages"] == []


async def test_chunked_body_under_the_limit_streams(sqlite_path: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"userId":"alice",'
        yield b'"messages":[{"role":"user","content":"hi"}],"params":{"mock":{"tokenDelayMs":0}}}'

    async with in_process(sqlite_path=sqlite_path, max_body_bytes=1000) as http:
        response = await http.post("/chat/stream", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 200
        assert response.text.endswith("\n\n") and "event: done" in response.text


async def test_413_over_real_uvicorn(live_server: Callable[..., LiveServer], sqlite_path: str) -> None:
    server = live_server(create_app(sqlite_path=sqlite_path, max_body_bytes=2048))
    async with httpx.AsyncClient(base_url=server.url) as http:
        big = await http.post("/chat/clear", content=padded(4096), headers={"content-type": "application/json"})
        assert big.status_code == 413
        # The server keeps answering.
        small = await http.post("/chat/clear", content=padded(2048), headers={"content-type": "application/json"})
        assert small.status_code == 200
