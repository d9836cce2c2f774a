"""The OpenAPI document of the HTTP API, generated from the msgspec schemas of the bodies and replies."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .schema import (
    MAX_ID_CHARS,
    ChatMessage,
    ChatRequest,
    CreateConversationRequest,
    DeleteConversationRequest,
    StopRequest,
    UserOnlyRequest,
    id_fields,
)
from .store.base import ConversationInfo, StoredMessage

__all__ = [
    "OPENAPI_VERSION",
    "openapi_bytes",
    "openapi_document",
    "openapi_json",
]

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"


class TokenEvent(msgspec.Struct):
    """The data of a `token` frame: one piece of the reply."""

    type: Literal["token"]
    token: str


class AssistantMessage(msgspec.Struct):
    """The whole reply, as carried by `done`."""

    role: Literal["assistant"]
    content: str


class Usage(msgspec.Struct):
    """Token counts: `tokens` always; the others when the provider reported them."""

    tokens: int
    inputTokens: int | msgspec.UnsetType = msgspec.UNSET
    outputTokens: int | msgspec.UnsetType = msgspec.UNSET


class DoneEvent(msgspec.Struct):
    """The data of the `done` frame that ends a successful stream."""

    type: Literal["done"]
    message: AssistantMessage
    provider: str
    usage: Usage
    conversationId: str
    stopped: bool | msgspec.UnsetType = msgspec.UNSET


class ErrorBody(msgspec.Struct):
    """What went wrong: a message for people and, often, a `code` for programs."""

    message: str
    code: str | msgspec.UnsetType = msgspec.UNSET


class ErrorEvent(msgspec.Struct):
    """The data of the `error` frame that ends a failed stream."""

    type: Literal["error"]
    error: ErrorBody


class HistoryReply(msgspec.Struct):
    """The reply of `GET /chat/history`."""

    userId: str
    messages: list[StoredMessage]


class ClearReply(msgspec.Struct):
    """The reply of `POST /chat/clear`."""

    ok: bool
    userId: str


class ConversationRow(ConversationInfo):
    """One conversation of `GET /chat/conversations`; `activeStreamId` names the stream running into it."""

    activeStreamId: str | None


class ConversationsReply(msgspec.Struct):
    """The reply of `GET /chat/conversations`, newest first."""

    userId: str
    conversations: list[ConversationRow]


class StopReply(msgspec.Struct):
    """The reply of `POST /chat/stop`: whether a running stream was told to stop."""

    ok: bool
    stopped: bool


class ConversationReply(msgspec.Struct):
    """The reply of `GET /chat/conversation`."""

    userId: str
    conversationId: str
    messages: list[StoredMessage]


class CreateConversationReply(msgspec.Struct):
    """The reply of `POST /chat/conversation/create`."""

    ok: bool
    userId: str
    conversationId: str
    title: str


class DeleteConversationReply(msgspec.Struct):
    """The reply of `POST /chat/conversation/delete`."""

    ok: bool
    userId: str
    conversationId: str


class HealthReply(msgspec.Struct):
    """The reply of `GET /healthz`."""

    ok: bool
    detail: str | msgspec.UnsetType = msgspec.UNSET


class ErrorReply(msgspec.Struct):
    """An error outside the stream (404, 409, 413)."""

    detail: str


class ValidationError(msgspec.Struct):
    """One problem with a request, as FastAPI reports it."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class HTTPValidationError(msgspec.Struct):
    """The body of a 422 answer."""

    detail: list[ValidationError]


_DOCUMENTED: tuple[type[Any], ...] = (
    ChatMessage,
    ChatRequest,
    UserOnlyRequest,
    CreateConversationRequest,
    DeleteConversationRequest,
    StopRequest,
    TokenEvent,
    DoneEvent,
    ErrorEvent,
    HistoryReply,
    ClearReply,
    ConversationsReply,
    ConversationReply,
    CreateConversationReply,
    DeleteConversationReply,
    StopReply,
    HealthReply,
    ErrorReply,
    HTTPValidationError,
)

_STREAM_DESCRIPTION = (
    "Server-Sent Events (`text/event-stream`): frames `event: NAME\\ndata: JSON\\n\\n`. Many `token` "
    "frames, then exactly one `done` or one `error`; `: ping` comment frames may come between them. "
    "The schema below is the JSON of one frame's `data` line."
)


def _ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": _REF.format(name=name)}


def _json(name: str, description: str = "Successful Response") -> dict[str, Any]:
    """A JSON response whose body is the named component."""
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _query(name: str, schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _operation(
    operation_id: str,
    summary: str,
    description: str,
    reply: str | dict[str, Any],
    *,
    body: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
    errors: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One operation; every one may answer 422 (operation ids are the reference's, for generated clients)."""
    operation: dict[str, Any] = {"summary": summary, "description": description, "operationId": operation_id}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"content": {"application/json": {"schema": _ref(body)}}, "required": True}
    responses = {"200": _json(reply) if isinstance(reply, str) else reply}
    responses.update(errors or {})
    responses["422"] = _json("HTTPValidationError", "Validation Error")
    operation["responses"] = responses
    return operation


def _paths() -> dict[str, Any]:
    """Every route of the API."""
    user = _query("userId", {"type": "string", "title": "Userid"})
    too_large = {"413": _json("ErrorReply", "Request body too large")}
    events = {"oneOf": [_ref("TokenEvent"), _ref("DoneEvent"), _ref("ErrorEvent")]}
    stream_reply = {"description": _STREAM_DESCRIPTION, "content": {"text/event-stream": {"schema": events}}}
    return {
        "/chat/stream": {
            "post": _operation(
                "chat_stream_chat_stream_post",
                "Chat Stream",
                "Run one turn and stream the reply: `token` frames, then `done` (or `error`).",
                stream_reply,
                body="ChatRequest",
                errors=too_large,
            )
        },
        "/chat/stream/{streamId}": {
            "get": _operation(
                "chat_resume_chat_stream__streamId__get",
                "Chat Resume",
                "Follow a resumable stream: the frames after `Last-Event-ID` (header) or `lastEventId` (query), "
                "then the live ones until `done` or `error`. 204 when unknown, expired or finished; 404 when "
                "it is another user's.",
                stream_reply,
                parameters=[
                    {"name": "streamId", "in": "path", "required": True, "schema": {"type": "string"}},
                    user,
                    _query("lastEventId", {"type": "integer", "minimum": 0}, required=False),
                    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "integer"}},
                ],
                errors={
                    "204": {"description": "Unknown, expired, or nothing left to send"},
                    "404": _json("ErrorReply", "Another user's stream"),
                },
            )
        },
        "/chat/stop": {
            "post": _operation(
                "chat_stop_chat_stop_post",
                "Chat Stop",
                "Stop the user's running stream (by `streamId`, or the one running into `conversationId`), "
                "wherever it runs; it ends with `done` marked `stopped`.",
                "StopReply",
                body="StopRequest",
                errors=too_large,
            )
        },
        "/chat/history": {
            "get": _operation(
                "chat_history_chat_history_get",
                "Chat History",
                "The messages of the user's default conversation.",
                "HistoryReply",
                parameters=[user],
            )
        },
        "/chat/clear": {
            "post": _operation(
                "chat_clear_chat_clear_post",
                "Chat Clear",
                "Delete all of the user's conversations.",
                "ClearReply",
                body="UserOnlyRequest",
                errors=too_large,
            )
        },
        "/chat/conversations": {
            "get": _operation(
                "chat_conversations_chat_conversations_get",
                "Chat Conversations",
                "The user's conversations, newest `updatedAt` first; times are Unix seconds.",
                "ConversationsReply",
                parameters=[
                    user,
                    _query("limit", {"type": "integer", "default": 50, "title": "Limit"}, required=False),
                ],
            )
        },
        "/chat/conversation": {
            "get": _operation(
                "chat_conversation_chat_conversation_get",
                "Chat Conversation",
                "One conversation's messages; `[]` when it is unknown or another user's.",
                "ConversationReply",
                parameters=[user, _query("conversationId", {"type": "string", "title": "Conversationid"})],
            )
        },
        "/chat/conversation/create": {
            "post": _operation(
                "chat_conversation_create_chat_conversation_create_post",
                "Chat Conversation Create",
                "Claim a conversation id for the user (a new one when none is given).",
                "CreateConversationReply",
                body="CreateConversationRequest",
                errors={**too_large, "409": _json("ErrorReply", "The id belongs to another user")},
            )
        },
        "/chat/conversation/delete": {
            "post": _operation(
                "chat_conversation_delete_chat_conversation_delete_post",
                "Chat Conversation Delete",
                "Delete one of the user's conversations (idempotent).",
                "DeleteConversationReply",
                body="DeleteConversationRequest",
                errors=too_large,
            )
        },
        "/healthz": {
            "get": {
                "summary": "Health",
                "description": "200 while the store answers, else 503.",
                "operationId": "healthz_healthz_get",
                "responses": {"200": _json("HealthReply"), "503": _json("HealthReply", "Store unavailable")},
            }
        },
    }


def _components() -> dict[str, Any]:
    """The component schemas, from the msgspec Structs."""
    _, schemas = msgspec.json.schema_components(_DOCUMENTED, ref_template=_REF)
    for kind in (ChatRequest, UserOnlyRequest, CreateConversationRequest, DeleteConversationRequest, StopRequest):
        properties = schemas[kind.__name__]["properties"]
        for field, required in id_fields(kind):  # the rules schema.decode_body checks (msgspec cannot see them)
            # An optional id is `anyOf: [string, null]`: the limits belong to its string.
            text = next((t for t in properties[field].get("anyOf", ()) if t.get("type") == "string"), properties[field])
            if required:
                text["minLength"] = 1
            text["maxLength"] = MAX_ID_CHARS
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
    if version is None:
        from . import __version__

        version = __version__
    return copy.deepcopy(_document(title, version))


@lru_cache(maxsize=4)
def openapi_bytes(title: str = "lean_chat") -> bytes:
    """The document as JSON bytes, for the `GET /openapi.json` route."""
    return msgspec.json.encode(openapi_document(title))


async def openapi_json(request: Request) -> Response:
    """`GET /openapi.json`: the document."""
    return Response(openapi_bytes(), media_type="application/json")
