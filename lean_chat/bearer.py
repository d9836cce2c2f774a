"""Bearer keys: the token of an `Authorization` header, and a constant-time check against the configured keys."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.types import Scope

from .headers import header

__all__ = ["bearer_token", "is_key"]


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_key(token: str | None, keys: Sequence[bytes]) -> bool:
    """True when the token (from `bearer_token`) is one of the keys; each compared in constant time, none skipped."""
    if token is None:
        return False
    candidate = token.encode("latin-1")  # the header's own bytes back
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key)
    return found
