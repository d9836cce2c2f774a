"""The ASGI application: routes, CORS, body limits, and the lifespan that opens the store and HTTP client."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import Authenticate, AuthMiddleware, UserMismatch, check_user
from .chat import ChatService
from .config import Settings
from .demo import CLIENT_PATH, demo_client, demo_page
from .limits import StreamSlots, check_chat_request
from .log_format import LOG_FORMATS
from .metrics import Metrics, load_metrics, metrics_state
from .openapi import openapi_json
from .providers import build_providers
from .providers.client import upstream_client
from .request_id import answer_headers
from .request_log import STREAM, RequestLog
from .schema import (
    BodyUnreadable,
    ChatRequest,
    CreateConversationRequest,
    DeleteConversationRequest,
    UserOnlyRequest,
    ValidationFailed,
    decode_body,
    query_error,
)
from .shutdown import Drain
from .store.base import ConversationForbidden, Store, default_conversation_id
from .store.memory import MemoryStore
from .store.sqlite import SQLiteStore
from .streaming import ErrorStream, TurnStream

__all__ = ["BodyTooLarge", "build_app", "create_app", "create_app_from_env"]

logger = logging.getLogger("lean_chat")
# What pydantic reads as an integer from a query string: ASCII digits, `_` between them, an optional `.0`.
_INTEGER = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
_encode = msgspec.json.Encoder().encode


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is too large (limit {limit} bytes).")
        self.detail = str(self)


class JSON(Response):
    """A JSON response encoded by msgspec."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode the content (lone surrogates echoed from a bad request are written as `\\ud800` escapes)."""
        try:
            return _encode(content)
        except UnicodeEncodeError:
            return json.dumps(msgspec.to_builtins(content), ensure_ascii=True).encode()


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than `limit` bytes (by header or by count)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _is_json(scope: Scope) -> bool:
    """True when the body is declared as JSON (or not declared at all)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True


async def decode_request(scope: Scope, receive: Receive, kind: type[Any], limit: int) -> Any:
    """Read and validate a JSON body of the given kind."""
    body = await read_body(scope, receive, limit)
    if body and not _is_json(scope):
        text = body.decode("utf-8", "replace")
        raise ValidationFailed(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": text,
                }
            ]
        )
    value = decode_body(body, kind)
    check_user(scope, value.userId)
    return value


class Endpoints:
    """The HTTP endpoints; each turns a request into a call on the service or the store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service: ChatService | None = None
        self.slots = StreamSlots(settings.max_streams_per_user)
        self.drain = Drain(settings.shutdown_grace_seconds)
        self.metrics = Metrics()

    @property
    def chat(self) -> ChatService:
        """The running service (set by the lifespan)."""
        if self.service is None:
            raise RuntimeError("lean_chat app used outside its lifespan")
        return self.service

    @property
    def store(self) -> Store:
        """The running store."""
        return self.chat.store

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`POST /chat/stream`: one turn, streamed as SSE."""
        settings = self.settings
        request: ChatRequest = await decode_request(scope, receive, ChatRequest, settings.max_body_bytes)
        check_chat_request(request, settings.max_messages_per_request, settings.max_message_chars)
        if self.drain.draining:
            raise HTTPException(503, "The server is shutting down.", headers={"Retry-After": "5"})
        with self.slots.hold(request.userId):
            try:
                turn = await self.chat.open_turn(request)
            except ConversationForbidden:
                await ErrorStream("This conversation belongs to another user.", "conversation_forbidden")(
                    scope, receive, send
                )
                return
            stream = TurnStream(turn, settings.heartbeat_seconds, settings.send_timeout_seconds, self.drain)
            scope[STREAM] = stream  # read when the request ends, for the metrics and the log line
            with self.metrics.streaming(stream):
                await stream(scope, receive, send)

    async def history(self, request: Request) -> Response:
        """`GET /chat/history`: the user's default conversation."""
        user_id = _query_user(request)
        try:
            messages = await self.store.load(user_id, default_conversation_id(user_id))
        except ConversationForbidden:
            messages = []
        return JSON({"userId": user_id, "messages": messages})

    async def clear(self, request: Request) -> Response:
        """`POST /chat/clear`: delete all of the user's conversations."""
        body: UserOnlyRequest = await decode_request(
            request.scope, request.receive, UserOnlyRequest, self.settings.max_body_bytes
        )
        await self.store.clear(body.userId)
        return JSON({"ok": True, "userId": body.userId})

    async def conversations(self, request: Request) -> Response:
        """`GET /chat/conversations`: the user's conversations, newest first."""
        errors: list[dict[str, Any]] = []
        user_id = _query_value(request, "userId", errors)
        limit = _query_int(request, "limit", 50, errors)
        if errors:
            raise ValidationFailed(errors)
        limit = max(1, min(self.settings.max_conversations_limit, limit))
        rows = await self.store.list_conversations(user_id, limit)
        return JSON({"userId": user_id, "conversations": rows})

    async def conversation(self, request: Request) -> Response:
        """`GET /chat/conversation`: one conversation's messages ([] when unknown or foreign)."""
        errors: list[dict[str, Any]] = []
        user_id = _query_value(request, "userId", errors)
        conversation_id = _query_value(request, "conversationId", errors)
        if errors:
            raise ValidationFailed(errors)
        messages = await self.store.read(user_id, conversation_id.strip())
        return JSON({"userId": user_id, "conversationId": conversation_id, "messages": messages})

    async def create(self, request: Request) -> Response:
        """`POST /chat/conversation/create`: claim a conversation id for the user."""
        body: CreateConversationRequest = await decode_request(
            request.scope, request.receive, CreateConversationRequest, self.settings.max_body_bytes
        )
        conversation_id = (body.conversationId or "").strip() or uuid.uuid4().hex
        title = (body.title or "").strip() or None
        try:
            kept = await self.store.create(body.userId, conversation_id, title)
        except ConversationForbidden:
            return JSON({"detail": "This conversation id belongs to another user."}, status_code=409)
        return JSON({"ok": True, "userId": body.userId, "conversationId": conversation_id, "title": kept})

    async def delete(self, request: Request) -> Response:
        """`POST /chat/conversation/delete`: delete one of the user's conversations (idempotent)."""
        body: DeleteConversationRequest = await decode_request(
            request.scope, request.receive, DeleteConversationRequest, self.settings.max_body_bytes
        )
        await self.store.delete(body.userId, body.conversationId.strip())
        return JSON({"ok": True, "userId": body.userId, "conversationId": body.conversationId})

    async def healthz(self, request: Request) -> Response:
        """`GET /healthz`: 200 when the store answers."""
        try:
            await self.store.ping()
        except Exception:
            return JSON({"ok": False, "detail": "store unavailable"}, status_code=503)
        return JSON({"ok": True})


def _query_value(request: Request, name: str, errors: list[dict[str, Any]]) -> str:
    """A required query parameter; when absent, "" and an error added to `errors`."""
    value = request.query_params.get(name)
    if value is None:
        errors.append(query_error("missing", name, "Field required", None))
        return ""
    return value


def _query_int(request: Request, name: str, default: int, errors: list[dict[str, Any]]) -> int:
    """An optional integer query parameter; when unreadable, the default and an error added to `errors`."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if _INTEGER.fullmatch(text):
        return int(text.split(".", 1)[0])
    message = "Input should be a valid integer, unable to parse string as an integer"
    errors.append(query_error("int_parsing", name, message, raw))
    return default


def _query_user(request: Request) -> str:
    """The `userId` query parameter, or a 422 naming it."""
    errors: list[dict[str, Any]] = []
    user_id = _query_value(request, "userId", errors)
    if errors:
        raise ValidationFailed(errors)
    return user_id


STREAM_PATH = "/chat/stream"


def _route_path(scope: Scope) -> str:
    """The request path below the app's mount point (`root_path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class _StreamLane:
    """`POST /chat/stream` as a raw ASGI app: bad input answered by the same handlers as the other endpoints."""

    def __init__(self, endpoints: Endpoints, handlers: dict[Any, Any]) -> None:
        self.endpoints = endpoints
        self.handlers = handlers
        self.refusals = tuple(handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the endpoint; a refusal raised before the stream starts becomes its JSON error response."""
        try:
            await self.endpoints.stream(scope, receive, send)
        except self.refusals as exc:
            handler = next(self.handlers[kind] for kind in type(exc).__mro__ if kind in self.handlers)
            response = await handler(Request(scope, receive), exc)
            response.raw_headers.extend(answer_headers(scope, response.status_code))
            await response(scope, receive, send)


class _StreamFirst:
    """Sends `POST /chat/stream` down its own short lane; everything else through Starlette's whole stack."""

    def __init__(self, lane: ASGIApp, rest: ASGIApp, log: RequestLog) -> None:
        self.lane = lane
        self.rest = rest
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch on the method and path (each HTTP request through the request log: its id, its line)."""
        if scope["type"] != "http":
            await self.rest(scope, receive, send)
        elif scope["method"] == "POST" and _route_path(scope) == STREAM_PATH:
            await self.log.lane(self.lane, scope, receive, send)
        else:
            await self.log.rest(self.rest, scope, receive, send)


class LeanStarlette(Starlette):
    """Starlette, with the stream route taken past the router and the error middleware.

    An open stream keeps every layer it was called through suspended, and each of its token sends passes
    every layer's `send` wrapper: the stream lane has only the user middleware (CORS, auth) and the endpoint.
    """

    def __init__(self, *, stream_lane: ASGIApp, request_log: RequestLog, **options: Any) -> None:
        super().__init__(**options)
        self.stream_lane = stream_lane
        self.request_log = request_log

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack, behind a dispatcher that sends streams down the lane (in the same middleware)."""
        lane = self.stream_lane
        for kind, args, kwargs in reversed(self.user_middleware):
            lane = kind(lane, *args, **kwargs)
        return _StreamFirst(lane, super().build_middleware_stack(), self.request_log)


def _error_handlers() -> dict[Any, Any]:
    """Exception handlers giving FastAPI-shaped error bodies."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSON({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationFailed)
        return JSON({"detail": exc.detail}, status_code=422)

    async def too_large(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyTooLarge)
        return JSON({"detail": exc.detail}, status_code=413)

    async def unreadable(request: Request, exc: Exception) -> Response:
        return JSON({"detail": "There was an error parsing the body"}, status_code=400)

    async def mismatch(request: Request, exc: Exception) -> Response:
        return JSON({"detail": UserMismatch.detail}, status_code=403)

    return {
        HTTPException: http_error,
        ValidationFailed: invalid,
        BodyTooLarge: too_large,
        BodyUnreadable: unreadable,
        UserMismatch: mismatch,
    }


def open_store(settings: Settings) -> Store:
    """The store the settings ask for: SQLite at the resolved path, or memory when disabled."""
    path = settings.resolved_sqlite_path()
    return SQLiteStore(path) if path else MemoryStore()


def build_app(settings: Settings, store: Store | None = None, authenticate: Authenticate | None = None) -> Starlette:
    """The lean_chat ASGI app for these settings (a store may be passed in, for tests; `authenticate`: auth.py)."""
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {settings.log_format!r}")
    endpoints = Endpoints(settings)
    metrics = endpoints.metrics = load_metrics(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        chosen = store if store is not None else open_store(settings)
        await chosen.open()
        async with upstream_client(settings) as client:
            watched = metrics.watch_store(chosen)
            endpoints.service = ChatService(watched, build_providers(settings, client), settings.default_model)
            metrics.open(client)
            logger.info(
                "lean_chat ready: providers %s; history %s; metrics %s",
                ", ".join(settings.configured_providers()) or "none (mock only)",
                f"in SQLite at {os.path.abspath(chosen.path)}" if isinstance(chosen, SQLiteStore) else "in memory",
                metrics_state(metrics.enabled),
            )
            endpoints.drain.watch_signals()
            # Everything made at start-up lives as long as the app: kept out of the collector's full passes,
            # which otherwise walk it all and stall every open stream for tens of milliseconds.
            gc.freeze()
            try:
                yield
            finally:
                gc.unfreeze()
                metrics.close()
                endpoints.drain.restore_signals()
                endpoints.service = None
                await chosen.close()

    handlers = _error_handlers()
    stream_lane = _StreamLane(endpoints, handlers)
    routes = [
        # Reached only by methods other than POST (405): POST goes down the stream lane.
        Route(STREAM_PATH, stream_lane, methods=["POST"]),
        Route("/chat/history", endpoints.history, methods=["GET"]),
        Route("/chat/clear", endpoints.clear, methods=["POST"]),
        Route("/chat/conversations", endpoints.conversations, methods=["GET"]),
        Route("/chat/conversation", endpoints.conversation, methods=["GET"]),
        Route("/chat/conversation/create", endpoints.create, methods=["POST"]),
        Route("/chat/conversation/delete", endpoints.delete, methods=["POST"]),
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]
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
        request_log=RequestLog(metrics, settings.log_format == "json"),
        routes=routes,
        middleware=middleware,
        exception_handlers=handlers,
        lifespan=lifespan,
    )


def create_app(
    *, settings: Settings | None = None, authenticate: Authenticate | None = None, **options: Any
) -> Starlette:
    """A lean_chat ASGI app; keyword arguments are `Settings` fields (the reference's names included)."""
    if settings is not None and options:
        raise TypeError("pass either settings= or keyword options, not both")
    return build_app(settings or Settings(**options), authenticate=authenticate)


def create_app_from_env(*, authenticate: Authenticate | None = None, **options: Any) -> Starlette:
    """A lean_chat ASGI app configured from the environment (WIRE.md names, then LEAN_CHAT_*)."""
    return build_app(Settings.from_env(**options), authenticate=authenticate)
