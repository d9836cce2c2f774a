"""The stream lane: `POST /chat/stream` (and `POST /chat/ui`) taken past Starlette's router and error middleware.

An open stream keeps every layer it was called through suspended, and each of its token sends passes every
layer's `send` wrapper: the lane has only the user middleware (CORS, auth) and the endpoint.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ..refusals import Refusal
from ..scope_keys import BODY_SEND
from .auth import AuthMiddleware
from .endpoints import Endpoints
from .paths import LANE_PATHS, UI_PATH, route_path
from .refusal_responses import refusal_response
from .request_log import RequestLog

__all__ = ["LeanStarlette", "StreamFirst", "StreamLane"]

# Middleware that change at most the head of an answer (CORS adds headers; auth refuses or passes on).
_HEAD_ONLY: tuple[type, ...] = (CORSMiddleware, AuthMiddleware)


class StreamLane:
    """The streams' POSTs as a raw ASGI app: a refusal before the stream starts becomes its JSON answer."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the endpoint of the path, answering a refusal the way the app's exception handler does."""
        endpoints = self.endpoints
        try:
            if route_path(scope) == UI_PATH:
                await endpoints.ui.stream(scope, receive, send)
            else:
                await endpoints.stream(scope, receive, send)
        except Refusal as exc:
            await refusal_response(exc, scope)(scope, receive, send)


class StreamFirst:
    """Sends the streams' POSTs down their own short lane; everything else through Starlette's whole stack."""

    def __init__(self, lane: ASGIApp, rest: ASGIApp, log: RequestLog, bodies_direct: bool = False) -> None:
        self.lane = lane
        self.rest = rest
        self.log = log
        # Body frames may skip the lane's middleware (each token batch then passes no `send` wrapper).
        self.bodies_direct = bodies_direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch on the method and path (each HTTP request through the request log: its id, its line)."""
        if scope["type"] != "http":
            await self.rest(scope, receive, send)
        elif scope["method"] == "POST" and route_path(scope) in LANE_PATHS:
            if self.bodies_direct:
                scope[BODY_SEND] = send
            await self.log.lane(self.lane, scope, receive, send)
        else:
            await self.log.rest(self.rest, scope, receive, send)


class LeanStarlette(Starlette):
    """Starlette, with the stream route taken past the router and the error middleware."""

    def __init__(self, *, stream_lane: ASGIApp, request_log: RequestLog, **options: Any) -> None:
        super().__init__(**options)
        self.stream_lane = stream_lane
        self.request_log = request_log

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack, behind a dispatcher that sends streams down the lane (in the same middleware)."""
        lane = self.stream_lane
        for kind, args, kwargs in reversed(self.user_middleware):
            lane = kind(lane, *args, **kwargs)
        bodies_direct = all(
            isinstance(kind, type) and issubclass(kind, _HEAD_ONLY) for kind, _, _ in self.user_middleware
        )
        return StreamFirst(lane, super().build_middleware_stack(), self.request_log, bodies_direct)
