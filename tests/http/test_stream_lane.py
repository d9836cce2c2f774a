"""`POST /chat/stream` takes its own short lane past Starlette's router: the same CORS, errors and mounting."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from lean_chat import create_app
from tests.support.apps import in_process, stream_body
from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio

ORIGIN = {"origin": "http://page.example"}


async def test_stream_and_its_errors_carry_cors_headers(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path) as http:
        stream = await http.post("/chat/stream", json=stream_body("cors", "hi"), headers=ORIGIN)
        assert stream.status_code == 200
        assert stream.headers["access-control-allow-origin"] == "*"
        assert check_grammar(parse_frames(stream.content)).event == "done"
        invalid = await http.post("/chat/stream", json={"userId": "cors"}, headers=ORIGIN)
        assert invalid.status_code == 422
        assert invalid.headers["access-control-allow-origin"] == "*"
        assert invalid.json()["detail"][0]["loc"] == ["body", "messages"]


async def test_configured_origins_apply_to_streams(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path, cors_allow_origins=["http://good.example"]) as http:
        body = stream_body("cors", "hi")
        good = await http.post("/chat/stream", json=body, headers={"origin": "http://good.example"})
        assert good.headers["access-control-allow-origin"] == "http://good.example"
        assert "origin" in good.headers["vary"].lower()
        bad = await http.post("/chat/stream", json=body, headers={"origin": "http://bad.example"})
        assert "access-control-allow-origin" not in bad.headers


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{not json", 422, "json_invalid"),
        (b'{"userId": "\xff", "messages": []}', 400, None),
        (b'{"userId": "x", "messages": []}' + b" " * 2048, 413, None),
    ],
)
async def test_refusals_are_json_errors(sqlite_path: str, body: bytes, status: int, detail: str | None) -> None:
    async with in_process(sqlite_path=sqlite_path, max_body_bytes=1024) as http:
        response = await http.post("/chat/stream", content=body, headers={"content-type": "application/json"})
        assert response.status_code == status
        answer = response.json()
        assert "detail" in answer
        if detail is not None:
            assert answer["detail"][0]["type"] == detail


async def test_other_methods_and_a_trailing_slash_go_through_the_router(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path) as http:
        assert (await http.get("/chat/stream")).status_code == 405
        assert (await http.put("/chat/stream", json={})).status_code == 405
        moved = await http.post("/chat/stream/", json=stream_body("slash", "hi"))
        assert moved.status_code == 307
        assert moved.headers["location"].endswith("/chat/stream")


async def test_streams_under_a_starlette_mount(sqlite_path: str) -> None:
    lean = create_app(sqlite_path=sqlite_path)
    parent = Starlette(routes=[Mount("/ai", app=lean)], lifespan=lean.router.lifespan_context)
    async with in_process(parent) as http:
        response = await http.post("/ai/chat/stream", json=stream_body("mounted", "hi"))
        assert response.status_code == 200
        assert check_grammar(parse_frames(response.content)).event == "done"
        assert (await http.get("/ai/chat/stream")).status_code == 405
        history = (await http.get("/ai/chat/history", params={"userId": "mounted"})).json()
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
        # The path alone is not enough: the app only answers below its own mount point.
        assert (await http.post("/chat/stream", json=stream_body("mounted", "hi"))).status_code == 404


class BodyTagger:
    """A user's middleware that changes every body message of an answer (each gets a comment line)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def tagged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b": tagged\n" + message["body"]}
            await send(message)

        await self.app(scope, receive, tagged)


async def test_a_users_middleware_sees_every_body_frame_of_a_stream(sqlite_path: str) -> None:
    # The lane's own middleware (CORS, auth) change heads only, so frames may skip them; a user's may not be skipped.
    app = create_app(sqlite_path=sqlite_path)
    app.add_middleware(BodyTagger)
    async with in_process(app) as http:
        stream = await http.post("/chat/stream", json=stream_body("tagged", "hi", tokenDelayMs=1), headers=ORIGIN)
    frames = parse_frames(stream.content)
    assert check_grammar(frames).event == "done"
    assert stream.content.startswith(b": tagged\nevent: token")
    assert b": tagged\nevent: done" in stream.content
    assert stream.content.count(b": tagged\n") > 2  # every batch of tokens, and the done frame
    assert stream.headers["access-control-allow-origin"] == "*"
