"""The stream lane: `POST /chat/stream` (and `POST /chat/ui`) taken past Starlette's router and error middleware.

An open stream keeps every layer it was called through suspended, and each of its token sends passes every
layer's `send` wrapper: the lane has only the user middleware (CORS, auth) and the endpoint.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ..refusals import Refusal
from ..scope_keys import BODY_SEND, STATUS
from .auth import AuthMiddleware
from .endpoints import Endpoints
from .paths import LANE_PATHS, UI_PATH, route_path
from .refusal_responses import refusal_response
from .request_log import RequestLog

__all__ = ["LeanStarlette", "StreamLane"]

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


class LeanStarlette(Starlette):
    """Starlette, with the streams' POSTs dispatched in its own call, past the router and the error middleware.

    The dispatch, the request log's part and an outermost CORS middleware run in this one frame, which an open
    stream keeps: CORS changes only the head of a `POST` answer (its `send` wrapper is used as is), so it needs no
    frame of its own. Other user middleware still wrap the lane (each then keeps its frame).
    """

    def __init__(self, *, stream_lane: StreamLane, request_log: RequestLog, **options: Any) -> None:
        super().__init__(**options)
        self.stream_lane = stream_lane
        self.request_log = request_log
        self._lane: ASGIApp | None = None  # the lane's user middleware around the stream lane, when any is left
        self._cors: CORSMiddleware | None = None  # the outermost CORS middleware, applied by its `send` wrapper
        # Body frames may skip the lane's middleware (each token batch then passes no `send` wrapper).
        self._bodies_direct = False

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack for everything but the lane; the lane's own middleware beside it."""
        middleware = list(self.user_middleware)
        self._bodies_direct = all(isinstance(kind, type) and issubclass(kind, _HEAD_ONLY) for kind, _, _ in middleware)
        if middleware and middleware[0].cls is CORSMiddleware:  # type: ignore[comparison-overlap]
            _, args, kwargs = middleware.pop(0)
            self._cors = CORSMiddleware(self.stream_lane, *args, **kwargs)
        lane: ASGIApp | None = None
        for kind, args, kwargs in reversed(middleware):
            lane = kind(lane or self.stream_lane, *args, **kwargs)
        self._lane = lane
        return super().build_middleware_stack()

    def _head_send(self, scope: Scope, send: Send) -> Send:
        """`send` through the outermost CORS middleware's wrapper, when there is one (it adds CORS's headers)."""
        if self._cors is None:
            return send
        return functools.partial(self._cors.send, send=send, request_headers=Headers(scope=scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch on the method and path (each HTTP request through the request log: its id, its line)."""
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        if scope["type"] != "http":
            await self.middleware_stack(scope, receive, send)
        elif scope["method"] != "POST" or (path := route_path(scope)) not in LANE_PATHS:
            await self.request_log.rest(self.middleware_stack, scope, receive, send)
        else:
            started = self.request_log.begin(scope)
            status = 500
            try:
                if self._bodies_direct:
                    scope[BODY_SEND] = send
                if self._lane is not None:
                    await self._lane(scope, receive, self._head_send(scope, send))
                else:  # the stream lane's own call, in this frame
                    endpoints = self.stream_lane.endpoints
                    try:
                        if path == UI_PATH:
                            await endpoints.ui.stream(scope, receive, self._head_send(scope, send))
                        else:  # `Endpoints.stream` in parts: no frame of it, nor of `open_turn`, is kept meanwhile
                            app = await endpoints.open_turn(scope, await endpoints.stream_request(scope, receive))
                            # A stream drops its head's `send` (CORS's wrapper) once the head is sent: not kept here
                            await app(scope, receive, self._head_send(scope, send))
                    except Refusal as exc:
                        await refusal_response(exc, scope)(scope, receive, self._head_send(scope, send))
                status = scope.get(STATUS, 200)
            finally:
                self.request_log.finished(scope, status, started)
