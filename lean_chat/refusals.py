"""Refusals: every way lean_chat says no to a request, as one exception type.

The exceptions live here, below every layer (the store and the hub raise them too); http/refusal_responses.py
answers them. Hierarchy:

    Refusal (status_code, detail, headers)   -> JSON {"detail": ...} with that status and headers
    ├── BodyUnreadable      400  the body is not valid UTF-8
    ├── AuthRejected        401  credentials missing or wrong (auth.py's hook may raise it)
    ├── UserMismatch        403  the userId is not the authenticated caller's
    ├── BodyTimeout         408  the body took longer to arrive than allowed
    ├── ConversationTaken   409  the conversation id belongs to another user
    ├── BodyTooLarge        413  the body is over the configured size
    ├── ValidationFailed    422  the request broke the rules; `detail` is FastAPI's list of errors
    ├── TooManyStreams      429  the user already runs as many streams as allowed
    ├── ShuttingDown        503  the server is draining
    └── StoreUnavailable    503  the history store cannot be reached (store/base.py; also ends a running stream)

Starlette's own `HTTPException` (404 and 405 from the router) is answered by the same handler.
Refusals are raised only before an answer has started; a stream that fails later ends with an `error` frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "RETRY_AFTER_SECONDS",
    "AuthRejected",
    "BodyTimeout",
    "BodyTooLarge",
    "BodyUnreadable",
    "ConversationTaken",
    "Refusal",
    "ShuttingDown",
    "TooManyStreams",
    "UserMismatch",
    "ValidationFailed",
]

# How long a client refused for a busy moment (429, 503) is asked to wait.
RETRY_AFTER_SECONDS = 1


class Refusal(Exception):
    """A request refused before any work: answered with `status_code`, `{"detail": detail}` and `headers`."""

    status_code = 400
    detail: Any = "Bad request."
    headers: Mapping[str, str] | None = None

    def __init__(self, detail: Any = None, headers: Mapping[str, str] | None = None) -> None:
        if detail is not None:
            self.detail = detail
        if headers is not None:
            self.headers = headers
        super().__init__(self.detail if isinstance(self.detail, str) else type(self).__name__)


class BodyUnreadable(Refusal):
    """The body is not valid UTF-8 (FastAPI answers 400 "There was an error parsing the body")."""

    status_code = 400
    detail = "There was an error parsing the body"


class AuthRejected(Refusal):
    """Credentials are missing or wrong (401); an `authenticate` hook raises it to refuse with its own detail."""

    status_code = 401
    detail = "Invalid credentials."
    # Refused before the body is read: closing the connection spares reading whatever body follows.
    headers = {"WWW-Authenticate": "Bearer", "Connection": "close"}


class UserMismatch(Refusal):
    """The request names a userId other than the authenticated caller's (403)."""

    status_code = 403
    detail = "userId does not match the authenticated user."


class BodyTimeout(Refusal):
    """The request body did not arrive within the configured time (408)."""

    status_code = 408
    detail = "The request body took too long to arrive."
    headers = {"Connection": "close"}  # the rest of the body is not read


class ConversationTaken(Refusal):
    """The conversation id is already another user's (409)."""

    status_code = 409
    detail = "This conversation id belongs to another user."


class BodyTooLarge(Refusal):
    """The request body is over the configured limit (413)."""

    status_code = 413
    headers = {"Connection": "close"}  # the rest of the body is not read

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is too large (limit {limit} bytes).")


class ValidationFailed(Refusal):
    """A request broke the rules (422); `detail` is the FastAPI-shaped list of errors."""

    status_code = 422

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail)


class TooManyStreams(Refusal):
    """The user already runs as many streams as allowed in this process (429)."""

    status_code = 429
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}

    def __init__(self, limit: int) -> None:
        super().__init__(f"Too many concurrent streams for this user (limit {limit}).")


class ShuttingDown(Refusal):
    """The server is draining and takes no new streams (503)."""

    status_code = 503
    detail = "The server is shutting down."
    headers = {"Retry-After": "5"}
