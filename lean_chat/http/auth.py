"""Authentication: bearer keys for a trusted backend, or a hook that names the caller; off by default."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..bearer import bearer_token, is_key
from ..refusals import AuthRejected, Refusal, UserMismatch
from ..scope_keys import AUTH_USER
from .paths import OPEN_PATHS, route_path
from .refusal_responses import refusal_response

__all__ = [
    "AuthMiddleware",
    "AuthRejected",
    "Authenticate",
    "UserMismatch",
    "bearer_token",
    "check_user",
    "is_key",
]

logger = logging.getLogger("lean_chat")

Authenticate = Callable[[Request], Awaitable[str | None]]
"""An async hook: the caller's user id, or None (or raise AuthRejected) to refuse the request."""

_MISSING = "Missing credentials: send an Authorization: Bearer header."


def check_user(scope: Scope, user_id: str) -> None:
    """Raise UserMismatch when the caller is authenticated as someone other than `user_id`."""
    caller = scope.get(AUTH_USER)
    if caller is not None and caller != user_id:
        raise UserMismatch()


class AuthMiddleware:
    """Refuses requests without valid credentials (401) before any work; preflights and OPEN_PATHS pass."""

    def __init__(self, app: ASGIApp, api_keys: Sequence[str] = (), authenticate: Authenticate | None = None) -> None:
        self.app = app
        self.keys = [key.encode("utf-8") for key in api_keys if key]
        self.authenticate = authenticate

    @property
    def enabled(self) -> bool:
        """True when any form of authentication is configured."""
        return bool(self.keys) or self.authenticate is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the credentials of an HTTP request, then pass it on."""
        if (
            scope["type"] != "http"
            or not self.enabled
            or scope["method"] == "OPTIONS"
            or route_path(scope) in OPEN_PATHS
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if self.keys and is_key(token, self.keys):
            await self.app(scope, receive, send)
            return
        if self.authenticate is None:
            await _refuse(scope, receive, send, AuthRejected(_MISSING if token is None else "Invalid API key."))
            return
        try:
            user_id = await self.authenticate(Request(scope))
        except AuthRejected as exc:
            await _refuse(scope, receive, send, exc)
            return
        except Exception as exc:
            # Fail closed; the hook's own message may quote the credentials, so only its type is logged.
            logger.warning("authenticate hook failed with %s; request refused", type(exc).__name__)
            await _refuse(scope, receive, send, AuthRejected())
            return
        if not isinstance(user_id, str) or not user_id:
            await _refuse(scope, receive, send, AuthRejected())
            return
        scope[AUTH_USER] = user_id
        query_user = QueryParams(scope.get("query_string", b"")).get("userId")
        if query_user is not None and query_user != user_id:
            await _refuse(scope, receive, send, UserMismatch())
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
    """Answer with the refusal, without reading the request body."""
    await refusal_response(refusal, scope)(scope, receive, send)
