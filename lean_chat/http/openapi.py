"""The OpenAPI document of the HTTP API, built from the route table and the msgspec Structs of bodies and replies."""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..version import __version__
from .replies import ErrorReply, HTTPValidationError
from .routes import API_ROUTES, ApiRoute
from .schema import id_lengths

__all__ = [
    "OPENAPI_VERSION",
    "openapi_bytes",
    "openapi_document",
    "openapi_json",
]

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"

_STREAM_DESCRIPTION = (
    "Server-Sent Events (`text/event-stream`): frames `event: NAME\\ndata: JSON\\n\\n`. Many `token` "
    "frames, then exactly one `done` or one `error`; `: ping` comment frames may come between them. With "
    "`params.events`, `reasoning`, `tool_call`, `tool_result` and `step` frames too. "
    "The schema below is the JSON of one frame's `data` line."
)


def _ref(kind: type[Any]) -> dict[str, str]:
    """A reference to a Struct's component schema."""
    return {"$ref": _REF.format(name=kind.__name__)}


def _answer(
    description: str,
    reply: type[Any] | tuple[type[Any], ...] | list[type[Any]] | None,
    stream_format: str | None = None,
) -> dict[str, Any]:
    """One response: a JSON Struct, a JSON array of one (a list), an event stream (a tuple of the frames' Structs),
    or no body."""
    if reply is None:
        return {"description": description}
    if isinstance(reply, tuple):
        events = {"oneOf": [_ref(kind) for kind in reply]}
        return {
            "description": stream_format or _STREAM_DESCRIPTION,
            "content": {"text/event-stream": {"schema": events}},
        }
    if isinstance(reply, list):
        items = {"type": "array", "items": _ref(reply[0])}
        return {"description": description, "content": {"application/json": {"schema": items}}}
    return {"description": description, "content": {"application/json": {"schema": _ref(reply)}}}


def _operation(route: ApiRoute) -> dict[str, Any]:
    """One operation; its id is made as FastAPI makes it from the reference's handler, for generated clients."""
    operation_id = re.sub(r"\W", "_", route.name + route.path) + "_" + route.method.lower()
    operation: dict[str, Any] = {"summary": route.summary, "description": route.description}
    operation["operationId"] = operation_id
    if route.parameters:
        operation["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema} for p in route.parameters
        ]
    if route.body is not None:
        operation["requestBody"] = {"content": {"application/json": {"schema": _ref(route.body)}}, "required": True}
    responses = {"200": _answer("Successful Response", route.reply, route.stream_format)}
    if route.body is not None:
        responses["413"] = _answer("Request body too large", ErrorReply)
    for answer in route.answers:
        responses[str(answer.status)] = _answer(answer.description, answer.reply)
    if route.body is not None or route.parameters:
        responses["422"] = _answer("Validation Error", HTTPValidationError)
    operation["responses"] = responses
    return operation


def _paths() -> dict[str, Any]:
    """Every route of the API."""
    paths: dict[str, Any] = {}
    for route in API_ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return paths


def _documented() -> list[type[Any]]:
    """Every Struct the routes name: bodies, replies and frames, error replies (each once)."""
    kinds: list[type[Any] | None] = []
    for route in API_ROUTES:
        replies = tuple(route.reply) if isinstance(route.reply, (tuple, list)) else (route.reply,)
        kinds += [route.body, *replies, *(answer.reply for answer in route.answers)]
    kinds += [ErrorReply, HTTPValidationError]
    return [kind for kind in dict.fromkeys(kinds) if kind is not None]


def _components() -> dict[str, Any]:
    """The component schemas, from the msgspec Structs."""
    _, found = msgspec.json.schema_components(_documented(), ref_template=_REF)
    schemas = {name: found[name] for name in sorted(found)}  # by name, as FastAPI lists them
    for route in API_ROUTES:
        if route.body is None:
            continue
        properties = schemas[route.body.__name__]["properties"]
        for field, fewest, most in id_lengths(route.body):  # schema.decode_body's rules (msgspec cannot see them)
            # An optional id is `anyOf: [string, null]`: the limits belong to its string.
            text = next((t for t in properties[field].get("anyOf", ()) if t.get("type") == "string"), properties[field])
            if fewest:
                text["minLength"] = fewest
            text["maxLength"] = most
    return schemas


@lru_cache(maxsize=1)
def _document(title: str, version: str) -> dict[str, Any]:
    """The document, built once per title and version."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "paths": _paths(),
        "components": {"schemas": _components()},
    }


def openapi_document(title: str = "lean_chat", version: str | None = None) -> dict[str, Any]:
    """The OpenAPI document of lean_chat's HTTP API (a fresh copy the caller may change)."""
    return copy.deepcopy(_document(title, __version__ if version is None else version))


@lru_cache(maxsize=4)
def openapi_bytes(title: str = "lean_chat") -> bytes:
    """The document as JSON bytes, for the `GET /openapi.json` route."""
    return msgspec.json.encode(openapi_document(title))


async def openapi_json(request: Request) -> Response:
    """`GET /openapi.json`: the document."""
    return Response(openapi_bytes(), media_type="application/json")
