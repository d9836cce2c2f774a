"""Reading a request body: the size limit, the declared media type, and decoding it into a request Struct."""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope

from .auth import check_user
from .refusals import BodyTooLarge, ValidationFailed
from .schema import decode_body

__all__ = ["decode_request", "is_json", "read_body"]


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


def is_json(scope: Scope) -> bool:
    """True when the body is declared as JSON (or not declared at all)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True


async def decode_request(scope: Scope, receive: Receive, kind: type[Any], limit: int) -> Any:
    """Read and validate a JSON body of the given kind, from the caller it claims to be."""
    body = await read_body(scope, receive, limit)
    if body and not is_json(scope):
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
