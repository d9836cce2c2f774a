"""The answer to a refusal: one handler for every `Refusal`, and for Starlette's own `HTTPException` (404, 405)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from ..refusals import Refusal
from .json_response import JSON
from .request_id import answer_headers

__all__ = ["refusal_handlers", "refusal_response"]


def refusal_response(exc: Refusal | HTTPException, scope: Scope | None = None) -> JSON:
    """The JSON answer to a refusal (or to Starlette's HTTPException, shaped the same way).

    Given the scope (an answer written on the stream lane, outside Starlette), it notes the status for the
    request log and carries the request id header itself.
    """
    response = JSON({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    if scope is not None:
        response.raw_headers.extend(answer_headers(scope, exc.status_code))
    return response


async def _handle(request: Request, exc: Exception) -> Response:
    """Starlette's exception handler signature around `refusal_response`."""
    assert isinstance(exc, Refusal | HTTPException)
    return refusal_response(exc)


def refusal_handlers() -> dict[Any, Any]:
    """The app's exception handlers: one for refusals, the same for Starlette's HTTPException."""
    return {HTTPException: _handle, Refusal: _handle}
