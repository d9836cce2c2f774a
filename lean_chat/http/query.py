"""Query-string parameters read the way FastAPI reads them, with FastAPI-shaped 422 errors."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from ..refusals import ValidationFailed
from .schema import id_errors, query_error

__all__ = ["MAX_INTEGER_DIGITS", "query_id", "query_int", "query_user", "query_value"]

# What pydantic reads as an integer from a query string: ASCII digits, `_` between them, an optional `.0`.
_INTEGER = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
# Longer integers are refused as pydantic refuses them (and as `int()` does past Python's default str limit).
MAX_INTEGER_DIGITS = 4300


def query_value(request: Request, name: str, errors: list[dict[str, Any]]) -> str:
    """A required query parameter; when absent, "" and an error added to `errors`."""
    value = request.query_params.get(name)
    if value is None:
        errors.append(query_error("missing", name, "Field required", None))
        return ""
    return value


def query_id(request: Request, name: str, errors: list[dict[str, Any]]) -> str:
    """A required id (`userId`, `conversationId`): present, at most MAX_ID_CHARS characters, no U+0000."""
    value = query_value(request, name, errors)
    errors += id_errors(value, ["query", name])
    return value


def query_int(request: Request, name: str, default: int, errors: list[dict[str, Any]]) -> int:
    """An optional integer query parameter; when unreadable, the default and an error added to `errors`."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if _INTEGER.fullmatch(text):
        whole = text.split(".", 1)[0]
        if sum(c.isdigit() for c in whole) <= MAX_INTEGER_DIGITS:
            return int(whole)
        message = "Unable to parse input string as an integer, exceeded maximum size"
        errors.append(query_error("int_parsing_size", name, message, raw))
        return default
    message = "Input should be a valid integer, unable to parse string as an integer"
    errors.append(query_error("int_parsing", name, message, raw))
    return default


def query_user(request: Request) -> str:
    """The `userId` query parameter, or a 422 naming it."""
    errors: list[dict[str, Any]] = []
    user_id = query_id(request, "userId", errors)
    if errors:
        raise ValidationFailed(errors)
    return user_id
