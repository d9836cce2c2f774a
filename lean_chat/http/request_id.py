"""Request ids: the client's `x-request-id` when it is sane, else a new one; kept in the ASGI scope."""

from __future__ import annotations

import re

from starlette.types import Scope

from ..headers import header
from ..random_ids import random_hex
from ..scope_keys import CLIENT_REQUEST_ID, REQUEST_ID, STATUS

__all__ = [
    "REQUEST_ID_HEADER",
    "answer_headers",
    "choose_request_id",
    "frame_request_id",
    "id_header",
    "request_id_of",
]

REQUEST_ID_HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def choose_request_id(scope: Scope) -> str:
    """Put the request's id in the scope and return it: the client's when it is 1 to 128 characters of
    `A-Z a-z 0-9 . _ : -`, else 32 new hex digits."""
    value = header(scope, REQUEST_ID_HEADER)
    if value is not None and _SANE.fullmatch(value):
        chosen = scope[REQUEST_ID] = scope[CLIENT_REQUEST_ID] = value.decode("ascii")
        return chosen
    chosen = scope[REQUEST_ID] = random_hex(16)
    return chosen


def request_id_of(scope: Scope) -> str | None:
    """The id the dispatcher chose for this request, if it ran."""
    value = scope.get(REQUEST_ID)
    return value if isinstance(value, str) else None


def frame_request_id(scope: Scope) -> str | None:
    """The id an `error` frame carries: the client's own only, so that clients sending none see the same bytes."""
    value = scope.get(CLIENT_REQUEST_ID)
    return value if isinstance(value, str) else None


def id_header(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The `x-request-id` response header for this request (none when no id was chosen)."""
    value = request_id_of(scope)
    return [] if value is None else [(REQUEST_ID_HEADER, value.encode("ascii"))]


def answer_headers(scope: Scope, status: int) -> list[tuple[bytes, bytes]]:
    """For a refusal answered without Starlette: note its status for the request log, and give its id header."""
    scope[STATUS] = status
    return id_header(scope)
