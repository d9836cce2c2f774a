"""The replies as msgspec Structs: what each endpoint answers, and the data of the stream's frames."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..store.base import ConversationInfo, StoredMessage

__all__ = [
    "AssistantMessage",
    "ClearReply",
    "ConversationReply",
    "ConversationRow",
    "ConversationsReply",
    "CreateConversationReply",
    "DeleteConversationReply",
    "DoneEvent",
    "ErrorBody",
    "ErrorEvent",
    "ErrorReply",
    "HTTPValidationError",
    "HealthReply",
    "HistoryReply",
    "ReasoningEvent",
    "StepEvent",
    "StepSummary",
    "StopReply",
    "TokenEvent",
    "ToolCallEvent",
    "ToolErrorBody",
    "ToolResultEvent",
    "Usage",
    "ValidationError",
]

# The stream's frames are written as bytes by streaming.py (its fast path); these Structs describe their data.


class TokenEvent(msgspec.Struct):
    """The data of a `token` frame: one piece of the reply."""

    type: Literal["token"]
    token: str


class AssistantMessage(msgspec.Struct):
    """The whole reply, as carried by `done`; `parts` (text, reasoning, tool calls and results) when opted in."""

    role: Literal["assistant"]
    content: str
    parts: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET


class Usage(msgspec.Struct):
    """Token counts: `tokens` always; the others when the provider reported them."""

    tokens: int
    inputTokens: int | msgspec.UnsetType = msgspec.UNSET
    outputTokens: int | msgspec.UnsetType = msgspec.UNSET


class ReasoningEvent(msgspec.Struct):
    """The data of a `reasoning` frame (opt-in: `params.events`): more of a step's reasoning."""

    type: Literal["reasoning"]
    step: int
    delta: str


class ToolCallEvent(msgspec.Struct):
    """The data of a `tool_call` frame (opt-in): a complete call; `args` the decoded JSON, or its raw text."""

    type: Literal["tool_call"]
    step: int
    id: str
    name: str
    args: Any


class ToolErrorBody(msgspec.Struct):
    """Why a tool call failed: a code (docs/wire.md lists them) and a message for the model."""

    code: str
    message: str


class ToolResultEvent(msgspec.Struct):
    """The data of a `tool_result` frame (opt-in): a call's `output`, or its `error` with `isError` true."""

    type: Literal["tool_result"]
    step: int
    id: str
    name: str
    isError: bool
    output: Any | msgspec.UnsetType = msgspec.UNSET
    error: ToolErrorBody | msgspec.UnsetType = msgspec.UNSET


class StepSummary(msgspec.Struct):
    """One step of a turn, as `done.steps` lists it."""

    index: int
    finishReason: Literal["stop", "length", "tool-calls", "content-filter", "error", "other"]
    usage: Usage


class StepEvent(StepSummary):
    """The data of a `step` frame (opt-in): a step ended."""

    type: Literal["step"]


class DoneEvent(msgspec.Struct):
    """The data of the `done` frame that ends a successful stream (`steps` when the client opted in to events)."""

    type: Literal["done"]
    message: AssistantMessage
    provider: str
    usage: Usage
    conversationId: str
    steps: list[StepSummary] | msgspec.UnsetType = msgspec.UNSET
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
    """The reply of `GET /chat/conversation`; a paged one (`limit` or `before`) says where the next page ends."""

    userId: str
    conversationId: str
    messages: list[StoredMessage]
    nextBefore: int | None | msgspec.UnsetType = msgspec.UNSET
    hasMore: bool | msgspec.UnsetType = msgspec.UNSET


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
