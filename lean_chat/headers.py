"""Reading a request header from an ASGI scope (names are lower-case bytes there, as servers give them)."""

from __future__ import annotations

from starlette.types import Scope

__all__ = ["header"]


def header(scope: Scope, name: bytes) -> bytes | None:
    """The value of the first header called `name` (lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value  # type: ignore[no-any-return]
    return None
