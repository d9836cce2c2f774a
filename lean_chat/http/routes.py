"""The route table: each API route's path, method, endpoint, inputs and replies (app.py and openapi.py read it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .paths import STREAM_PATH, UI_PATH
from .replies import (
    ClearReply,
    ConversationReply,
    ConversationsReply,
    CreateConversationReply,
    DeleteConversationReply,
    DoneEvent,
    ErrorEvent,
    ErrorReply,
    HealthReply,
    HistoryReply,
    ReasoningEvent,
    StepEvent,
    StopReply,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from .schema import ChatRequest, CreateConversationRequest, DeleteConversationRequest, StopRequest, UserOnlyRequest
from .ui_schema import UI_CHUNKS, UIChatRequest, UIMessage

if TYPE_CHECKING:
    from .endpoints import Endpoints

__all__ = ["API_ROUTES", "EVENTS", "Answer", "ApiRoute", "Parameter"]

# The data of the stream's frames: a route whose reply is this tuple answers Server-Sent Events.
EVENTS: tuple[type[Any], ...] = (
    TokenEvent,
    ReasoningEvent,
    ToolCallEvent,
    ToolResultEvent,
    StepEvent,
    DoneEvent,
    ErrorEvent,
)


@dataclass(frozen=True)
class Parameter:
    """An input outside the body: where it is (`query`, `path`, `header`), and its JSON schema as documented."""

    name: str
    where: str
    schema: dict[str, Any]
    required: bool = True


@dataclass(frozen=True)
class Answer:
    """A documented answer besides 200 (and the 413 and 422 every route with inputs may give); None: no body."""

    status: int
    description: str
    reply: type[Any] | None = None


@dataclass(frozen=True)
class ApiRoute:
    """One route of the API; `name` is the reference's handler name, which its operation id is made from."""

    path: str
    method: str
    name: str
    endpoint: Callable[[Endpoints], Any]
    summary: str
    description: str
    body: type[Any] | None = None
    parameters: tuple[Parameter, ...] = ()
    reply: type[Any] | tuple[type[Any], ...] | list[type[Any]] = EVENTS  # a list of one Struct: a JSON array of it
    answers: tuple[Answer, ...] = ()
    # Served by the stream lane (stream_lane.py) ahead of the router, whose route then answers other methods (405).
    lane: bool = False
    # How an event stream's frames are written (None: the `event:`/`data:` frames of `/chat/stream`).
    stream_format: str | None = None


_USER = Parameter("userId", "query", {"type": "string", "title": "Userid"})
_UI_USER = Parameter("userId", "query", {"type": "string", "title": "Userid"}, required=False)
_CHAT_ID = Parameter("chatId", "path", {"type": "string", "maxLength": 256})
_UI_FORMAT = (
    "The AI SDK's UI message stream (`text/event-stream`, header `x-vercel-ai-ui-message-stream: v1`): each chunk "
    "is `data: JSON\\n\\n`, the last one `data: [DONE]`; `: ping` comment lines may come between them. The "
    "schema below is the JSON of one chunk (docs/ai-sdk.md)."
)

API_ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        STREAM_PATH,
        "POST",
        "chat_stream",
        lambda endpoints: endpoints.stream,
        "Chat Stream",
        "Run one turn and stream the reply: `token` frames, then `done` (or `error`).",
        body=ChatRequest,
        reply=EVENTS,
        lane=True,
    ),
    ApiRoute(
        STREAM_PATH + "/{streamId}",
        "GET",
        "chat_resume",
        lambda endpoints: endpoints.control.resume,
        "Chat Resume",
        "Follow a resumable stream: the frames after `Last-Event-ID` (header) or `lastEventId` (query), then the "
        "live ones until `done` or `error`. 204 when unknown, expired or finished; 404 when it is another user's.",
        parameters=(
            Parameter("streamId", "path", {"type": "string"}),
            _USER,
            Parameter("lastEventId", "query", {"type": "integer", "minimum": 0}, required=False),
            Parameter("Last-Event-ID", "header", {"type": "integer"}, required=False),
        ),
        reply=EVENTS,
        answers=(
            Answer(204, "Unknown, expired, or nothing left to send"),
            Answer(404, "Another user's stream", ErrorReply),
        ),
    ),
    ApiRoute(
        UI_PATH,
        "POST",
        "chat_ui",
        lambda endpoints: endpoints.ui.stream,
        "Chat UI",
        'Run one turn for the AI SDK\'s `useChat` (`DefaultChatTransport`, `api: "/chat/ui"`): the messages the '
        "server does not have (by id) are added, `regenerate-message` replaces the reply; the reply streams as UI "
        "message chunks. The user is the authenticated caller, else `userId`; `model`, `mock` and `resume` are "
        "read beside the transport's fields (`useChat`'s `body`).",
        body=UIChatRequest,
        reply=UI_CHUNKS,
        lane=True,
        stream_format=_UI_FORMAT,
    ),
    ApiRoute(
        UI_PATH + "/{chatId}/stream",
        "GET",
        "chat_ui_resume",
        lambda endpoints: endpoints.ui.resume,
        "Chat UI Resume",
        "The chat's running resumable reply (started with `resume: true`), from its start, then live, as UI message "
        "chunks; 204 when none runs (what `useChat`'s `resume` takes for nothing to resume).",
        parameters=(_CHAT_ID, _UI_USER),
        reply=UI_CHUNKS,
        answers=(Answer(204, "No resumable reply runs in this chat"),),
        stream_format=_UI_FORMAT,
    ),
    ApiRoute(
        UI_PATH + "/{chatId}/messages",
        "GET",
        "chat_ui_messages",
        lambda endpoints: endpoints.ui.messages,
        "Chat UI Messages",
        "The conversation as `UIMessage[]` (for `useChat({ messages })`); `[]` when unknown or another user's.",
        parameters=(_CHAT_ID, _UI_USER),
        reply=[UIMessage],
    ),
    ApiRoute(
        "/chat/stop",
        "POST",
        "chat_stop",
        lambda endpoints: endpoints.control.stop,
        "Chat Stop",
        "Stop the user's running stream (by `streamId`, or the one running into `conversationId`), wherever it "
        "runs; it ends with `done` marked `stopped`.",
        body=StopRequest,
        reply=StopReply,
    ),
    ApiRoute(
        "/chat/history",
        "GET",
        "chat_history",
        lambda endpoints: endpoints.history,
        "Chat History",
        "The messages of the user's default conversation.",
        parameters=(_USER,),
        reply=HistoryReply,
    ),
    ApiRoute(
        "/chat/clear",
        "POST",
        "chat_clear",
        lambda endpoints: endpoints.clear,
        "Chat Clear",
        "Delete all of the user's conversations.",
        body=UserOnlyRequest,
        reply=ClearReply,
    ),
    ApiRoute(
        "/chat/conversations",
        "GET",
        "chat_conversations",
        lambda endpoints: endpoints.conversations,
        "Chat Conversations",
        "The user's conversations, newest `updatedAt` first; times are Unix seconds.",
        parameters=(_USER, Parameter("limit", "query", {"type": "integer", "default": 50, "title": "Limit"}, False)),
        reply=ConversationsReply,
    ),
    ApiRoute(
        "/chat/conversation",
        "GET",
        "chat_conversation",
        lambda endpoints: endpoints.conversation,
        "Chat Conversation",
        "One conversation's messages; `[]` when it is unknown or another user's.",
        parameters=(_USER, Parameter("conversationId", "query", {"type": "string", "title": "Conversationid"})),
        reply=ConversationReply,
    ),
    ApiRoute(
        "/chat/conversation/create",
        "POST",
        "chat_conversation_create",
        lambda endpoints: endpoints.create,
        "Chat Conversation Create",
        "Claim a conversation id for the user (a new one when none is given).",
        body=CreateConversationRequest,
        reply=CreateConversationReply,
        answers=(Answer(409, "The id belongs to another user", ErrorReply),),
    ),
    ApiRoute(
        "/chat/conversation/delete",
        "POST",
        "chat_conversation_delete",
        lambda endpoints: endpoints.delete,
        "Chat Conversation Delete",
        "Delete one of the user's conversations (idempotent).",
        body=DeleteConversationRequest,
        reply=DeleteConversationReply,
    ),
    ApiRoute(
        "/healthz",
        "GET",
        "healthz",
        lambda endpoints: endpoints.healthz,
        "Health",
        "200 while the store answers, else 503.",
        reply=HealthReply,
        answers=(Answer(503, "Store unavailable", HealthReply),),
    ),
)
