"""The ASGI application: the factories, the routes and middleware, and the lifespan that opens the store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from .config import Settings
from .http.auth import Authenticate, AuthMiddleware
from .http.demo import CLIENT_PATH, demo_client, demo_page
from .http.endpoints import Endpoints
from .http.openapi import openapi_json
from .http.refusal_responses import refusal_handlers
from .http.request_log import RequestLog
from .http.routes import API_ROUTES
from .http.stream_lane import LeanStarlette, StreamLane
from .hub import StreamInfo, describe_hub, open_hub
from .metrics import load_metrics, metrics_state
from .providers import build_providers
from .providers.client import upstream_client
from .refusals import BodyTooLarge
from .server import gc_freeze
from .server.log_format import LOG_FORMATS, configured_secrets
from .store import open_store
from .store.base import Store
from .tools.demo import DEMO_TOOLS
from .tools.registry import ToolRegistry, Tools, registry_of
from .tools.runner import CallLimits
from .turn.chat import ChatService
from .turn.shutdown import SHUTDOWN_CODE, SHUTDOWN_MESSAGE

__all__ = ["BodyTooLarge", "build_app", "create_app", "create_app_from_env"]

logger = logging.getLogger("lean_chat")


def build_app(
    settings: Settings, store: Store | None = None, authenticate: Authenticate | None = None, tools: Tools = None
) -> Starlette:
    """The lean_chat ASGI app for these settings (a store may be passed in, for tests; `authenticate`: auth.py).

    `tools`: functions (or `Tool`s, or a `ToolRegistry`) the model may call (docs/wire.md "Tools and reasoning").
    """
    registry: ToolRegistry = registry_of(tools)
    if settings.demo_tools:
        for demo in DEMO_TOOLS:
            if registry.get(demo.__name__) is None:
                registry.add(demo)
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {settings.log_format!r}")
    endpoints = Endpoints(settings)
    metrics = endpoints.metrics = load_metrics(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        chosen = store if store is not None else open_store(settings)
        await chosen.open()
        async with upstream_client(settings) as client:
            providers = build_providers(settings, client)
            endpoints.service = ChatService(
                metrics.watch_store(chosen),
                providers,
                settings.default_model,
                settings.mock_fallback,
                settings.max_context_chars,
                registry,
                settings.max_steps,
                settings.max_tool_calls_per_step,
                CallLimits(settings.tool_timeout_seconds, settings.max_tool_result_bytes),
            )
            metrics.open(client)
            service = endpoints.service
            hub = open_hub(settings)

            async def save_orphan(info: StreamInfo, content: str) -> None:
                await service.save_interrupted(info.user_id, info.conversation_id, info.life, content, info.reply_id)

            await hub.open(save_orphan)
            endpoints.hub = hub
            logger.info(
                "lean_chat ready: providers %s; history %s; live streams %s; metrics %s; mock fallback %s",
                ", ".join(settings.configured_providers()) or "none (mock only)",
                chosen.describe(),
                describe_hub(settings),
                metrics_state(metrics.enabled),
                "on" if settings.mock_fallback else "off",
            )
            endpoints.drain.watch_signals()
            # Everything made at start-up lives as long as the app: kept out of the collector's full passes,
            # which otherwise walk it all and stall every open stream for tens of milliseconds.
            gc_freeze.hold()
            try:
                yield
            finally:
                gc_freeze.release()
                metrics.close()
                endpoints.drain.restore_signals()
                for producer in list(endpoints.producers):  # resumable replies still producing: cut short, saved
                    producer.stop(SHUTDOWN_MESSAGE, SHUTDOWN_CODE)
                for producer in list(endpoints.producers):
                    await producer.wait()
                await hub.close()
                endpoints.hub = None
                endpoints.service = None
                await chosen.close()

    stream_lane = StreamLane(endpoints)
    routes = [
        # A lane route is reached only by its other methods (405): its own goes down the stream lane.
        Route(api.path, stream_lane if api.lane else api.endpoint(endpoints), methods=[api.method])
        for api in API_ROUTES
    ]
    # Outside the API the document describes: the document itself, the metrics, the demo page.
    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))
    if metrics.enabled:
        routes.append(Route("/metrics", metrics.endpoint, methods=["GET"]))
    if settings.serve_demo_page:
        routes.append(Route("/", demo_page, methods=["GET"]))
        routes.append(Route(CLIENT_PATH, demo_client, methods=["GET"]))
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins or ["*"],
            allow_credentials=False,
            allow_methods=["*"],
            allow_headers=["*"],
        ),
    ]
    if settings.api_keys or authenticate is not None:
        # Only when configured: every open stream keeps each middleware's frame alive while it runs.
        middleware.append(Middleware(AuthMiddleware, api_keys=settings.api_keys, authenticate=authenticate))
    return LeanStarlette(
        stream_lane=stream_lane,
        request_log=RequestLog(metrics, settings.log_format == "json", configured_secrets(settings)),
        routes=routes,
        middleware=middleware,
        exception_handlers=refusal_handlers(),
        lifespan=lifespan,
    )


def create_app(
    *,
    settings: Settings | None = None,
    authenticate: Authenticate | None = None,
    tools: Tools = None,
    **options: Any,
) -> Starlette:
    """A lean_chat ASGI app; keyword arguments are `Settings` fields (the reference's names included).

    `tools`: the functions the model may call (plain or `@tool` functions, `Tool`s, or a `ToolRegistry`).
    """
    if settings is not None and options:
        raise TypeError("pass either settings= or keyword options, not both")
    return build_app(settings or Settings(**options), authenticate=authenticate, tools=tools)


def create_app_from_env(*, authenticate: Authenticate | None = None, tools: Tools = None, **options: Any) -> Starlette:
    """A lean_chat ASGI app configured from the environment (WIRE.md names, then LEAN_CHAT_*), with these tools."""
    return build_app(Settings.from_env(**options), authenticate=authenticate, tools=tools)
