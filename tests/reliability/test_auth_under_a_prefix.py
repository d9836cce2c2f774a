"""Regression: with API keys on, `/healthz` answered 401 under a prefix (the FastAPI shim at /ai, `--root-path`).

The open-path check compared the raw path; it now compares the path below `root_path`. One rule for both apps:
`/healthz` and the API description (`/openapi.json`, and `/docs`, `/redoc` where served) need no credentials;
every endpoint that touches a conversation does. And `lean_chat.compat.create_app` takes the `authenticate` hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

from lean_chat import create_app
from lean_chat.compat import create_app as create_shim_app
from lean_chat.compat import create_app_from_env as create_shim_app_from_env
from tests.apps import in_process, stream_body
from tests.conftest import LiveServer
from tests.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio

KEY = "prefix-backend-key"
SIGNED = {"authorization": f"Bearer {KEY}"}
OPEN = ["/healthz", "/openapi.json"]


async def _check(http: httpx.AsyncClient, prefix: str, *, docs: bool) -> None:
    """Open paths answer without a key; conversation endpoints need one, and work with it."""

    async def get(path: str, **options: Any) -> httpx.Response:
        return await http.get(prefix + path, **options)

    for path in [*OPEN, *(["/docs", "/redoc"] if docs else [])]:
        response = await get(path)
        assert response.status_code == 200, (prefix + path, response.status_code, response.text[:200])
    refused = await get("/chat/history", params={"userId": "u"})
    assert refused.status_code == 401, refused.text
    assert (await get("/chat/history", params={"userId": "u"}, headers=SIGNED)).status_code == 200


async def _stream(http: httpx.AsyncClient, prefix: str) -> None:
    """A signed stream under the prefix ends with `done`; an unsigned one is refused."""
    assert (await http.post(prefix + "/chat/stream", json=stream_body("u", "hi"))).status_code == 401
    response = await http.post(prefix + "/chat/stream", json=stream_body("u", "hi"), headers=SIGNED)
    assert check_grammar(parse_frames(response.content)).event == "done"


async def test_healthz_needed_credentials_under_the_shim_mounted_at_a_prefix() -> None:
    ai = create_shim_app(sqlite_path="", api_keys=[KEY])
    parent = FastAPI(lifespan=ai.router.lifespan_context)
    parent.mount("/ai", ai)
    async with in_process(parent) as http:
        await _check(http, "/ai", docs=True)
        await _stream(http, "/ai")


async def test_healthz_needed_credentials_under_the_plain_app_mounted_at_a_prefix() -> None:
    core = create_app(sqlite_path="", api_keys=[KEY])
    parent = Starlette(routes=[Mount("/ai", core)], lifespan=core.router.lifespan_context)
    async with in_process(parent) as http:
        await _check(http, "/ai", docs=False)
        await _stream(http, "/ai")


async def test_the_shim_unmounted_follows_the_same_rule() -> None:
    async with in_process(create_shim_app(sqlite_path="", api_keys=[KEY])) as http:
        await _check(http, "", docs=True)
        await _stream(http, "")


async def test_healthz_needed_credentials_with_root_path(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(create_app(sqlite_path="", api_keys=[KEY]), root_path="/ai")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        # Behind a proxy that strips /ai: uvicorn puts the root path back in front of the request's path.
        await _check(http, "", docs=False)
        await _stream(http, "")


async def _caller(request: Request) -> str | None:
    """A test hook: the caller is whoever `x-user` names."""
    return request.headers.get("x-user")


@pytest.mark.parametrize("factory", [create_shim_app, create_shim_app_from_env])
async def test_the_shim_refused_the_authenticate_hook(factory: Callable[..., Any]) -> None:
    app = factory(sqlite_path="", authenticate=_caller)
    async with in_process(app) as http:
        assert (await http.get("/chat/history", params={"userId": "ana"})).status_code == 401
        mine = await http.get("/chat/history", params={"userId": "ana"}, headers={"x-user": "ana"})
        assert mine.status_code == 200
        theirs = await http.get("/chat/history", params={"userId": "bob"}, headers={"x-user": "ana"})
        assert theirs.status_code == 403
        assert (await http.get("/healthz")).status_code == 200
