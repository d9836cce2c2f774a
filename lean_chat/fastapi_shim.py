"""The FastAPI shim: a FastAPI app whose lean_chat routes go straight to the core ASGI app.

Its public face is `lean_chat.compat` (`create_app`/`create_app_from_env` with fastapi-ai-chat's signature).
Not to be confused with the top-level `compat/` folder, the conformance kit that runs the same scenarios
against lean_chat and the reference package side by side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

try:
    from fastapi import FastAPI
    from fastapi.openapi.utils import get_openapi
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "lean_chat.compat needs FastAPI, which is an optional extra: pip install 'lean-chat[fastapi]'"
    ) from exc
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__
from .app import build_app
from .config import Settings
from .http.auth import Authenticate
from .http.openapi import openapi_document
from .tools.registry import Tools

__all__ = ["create_app", "create_app_from_env", "wrap_in_fastapi"]

# Settings the reference reads from the environment even when its create_app() is called with keywords.
_READ_FROM_ENVIRONMENT = (
    "openai_base_url",
    "anthropic_base_url",
    "gemini_base_url",
    "openai_max_retries",
    "openai_retry_base_delay_ms",
    "openai_retry_max_delay_ms",
    "gemini_max_retries",
    "gemini_retry_base_delay_ms",
    "gemini_retry_max_delay_ms",
)


_NOT_STARTED = (
    b'{"detail":"lean_chat is not started: its lifespan has not run. Use `with TestClient(app)`, or give a '
    b'parent app `lifespan=app.router.lifespan_context` when mounting it."}'
)


class _Forward:
    """Hands requests to the core app; while the lifespan is not running, answers 503 saying so."""

    def __init__(self, core: ASGIApp) -> None:
        self.core = core
        self.running = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward, or explain why not."""
        if self.running or scope["type"] != "http":
            await self.core(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_NOT_STARTED)).encode())]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": _NOT_STARTED})


def create_app(
    *,
    openai_api_key: str | None = None,
    anthropic_api_key: str | None = None,
    gemini_api_key: str | None = None,
    sqlite_path: str | None = None,
    cors_allow_origins: list[str] | None = None,
    authenticate: Authenticate | None = None,
    tools: Tools = None,
    **options: Any,
) -> FastAPI:
    """A FastAPI app served by lean_chat, called like `fastapi_ai_chat.create_app` (other `Settings` too).

    `authenticate` is the same hook as `lean_chat.create_app`'s (auth.py).
    """
    environment = Settings.from_env()
    values: dict[str, Any] = {name: getattr(environment, name) for name in _READ_FROM_ENVIRONMENT}
    values.update(
        openai_api_key=openai_api_key,
        anthropic_api_key=anthropic_api_key,
        gemini_api_key=gemini_api_key,
        sqlite_path=sqlite_path,
        cors_allow_origins=cors_allow_origins,
    )
    values.update(options)
    return wrap_in_fastapi(Settings(**values), authenticate, tools)


def create_app_from_env(*, authenticate: Authenticate | None = None, tools: Tools = None, **options: Any) -> FastAPI:
    """A FastAPI app served by lean_chat, configured from the environment (as `fastapi_ai_chat`'s)."""
    return wrap_in_fastapi(Settings.from_env(**options), authenticate, tools)


def wrap_in_fastapi(settings: Settings, authenticate: Authenticate | None = None, tools: Tools = None) -> FastAPI:
    """A FastAPI app whose lean_chat routes go straight to the core ASGI app, and whose docs describe them."""
    core = build_app(settings, authenticate=authenticate, tools=tools)
    forward = _Forward(core)

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        # Takes any app, so a parent can run it: FastAPI(lifespan=child.router.lifespan_context).
        async with core.router.lifespan_context(core):
            forward.running += 1
            try:
                yield
            finally:
                forward.running -= 1

    app = FastAPI(title="lean_chat", version=__version__, lifespan=lifespan)
    for route in core.routes:
        path = getattr(route, "path", None)
        if path is None or path == app.openapi_url:
            continue
        # No method filter: the core answers 405 and CORS preflights itself, as it does when served alone.
        name = getattr(route, "name", None)
        app.router.routes.append(Route(path, endpoint=forward, name=name, include_in_schema=False))

    def openapi() -> dict[str, Any]:
        """lean_chat's document, plus whatever routes the user added to this app."""
        if app.openapi_schema is None:
            document = openapi_document(app.title, app.version)
            added = get_openapi(title=app.title, version=app.version, routes=app.routes)
            document["paths"].update(added.get("paths", {}))
            for name, schema in added.get("components", {}).get("schemas", {}).items():
                document["components"]["schemas"].setdefault(name, schema)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
