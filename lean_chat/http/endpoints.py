"""The HTTP endpoints: each turns a request into a call on the chat service or the store."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..frames import SSE_HEADERS
from ..hub import Hub, StreamInfo, release_whole
from ..metrics import Metrics
from ..providers.parts import strip_state
from ..refusals import ConversationTaken, ShuttingDown, ValidationFailed
from ..scope_keys import FOLLOWED, STREAM
from ..store.base import ConversationForbidden, ConversationPage, Store, StoredMessage
from ..turn.chat import ChatService
from ..turn.detached import DetachedTurn
from ..turn.follow import FollowedTurn, FollowStream, stream_headers
from ..turn.framing import Framer, Reframer
from ..turn.shutdown import Drain
from ..turn.streaming import ErrorStream, TurnStream
from ..turn.turn_request import TurnRequest
from .chat_params import turn_request
from .json_response import JSON
from .limits import check_chat_request
from .query import query_id, query_int, query_user
from .replies import (
    ClearReply,
    ConversationReply,
    ConversationsReply,
    CreateConversationReply,
    DeleteConversationReply,
    HealthReply,
    HistoryReply,
)
from .request_body import BodyReader
from .request_id import frame_request_id, id_header
from .schema import ChatRequest, CreateConversationRequest, DeleteConversationRequest, UserOnlyRequest
from .stream_control import StreamControl, new_stream_id
from .ui_endpoints import UIDialect

__all__ = ["Endpoints", "public_messages"]

# More messages than any conversation holds: larger paging values mean the same, and fit every store's integers.
_PAGE_MAX = 2**31 - 1


def public_messages(messages: list[StoredMessage]) -> list[StoredMessage]:
    """Messages as a client may see them: the parts in `meta.parts` without their opaque provider state."""
    return [
        StoredMessage(m.role, m.content, strip_state(m.meta)) if m.meta is not None and "parts" in m.meta else m
        for m in messages
    ]


class Endpoints:
    """The HTTP endpoints; each turns a request into a call on the service or the store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service: ChatService | None = None
        self.hub: Hub | None = None  # live streams: resume, Stop, the per-user count (set by the lifespan)
        self.producers: set[DetachedTurn] = set()
        self.drain = Drain(settings.shutdown_grace_seconds)
        self.metrics = Metrics()
        self.bodies = BodyReader(settings.max_body_bytes, settings.body_timeout_seconds)
        self.control = StreamControl(settings, self.running_hub, self._decode)
        self.ui = UIDialect(self)  # the AI SDK's UI message stream (docs/ai-sdk.md)

    def running_hub(self) -> Hub:
        """The running stream hub (set by the lifespan)."""
        if self.hub is None:
            raise RuntimeError("lean_chat app used outside its lifespan")
        return self.hub

    async def _decode(self, request: Request, kind: type[Any]) -> Any:
        """A JSON body of this kind."""
        return await self.bodies.decode(request.scope, request.receive, kind)

    @property
    def chat(self) -> ChatService:
        """The running service (set by the lifespan)."""
        if self.service is None:
            raise RuntimeError("lean_chat app used outside its lifespan")
        return self.service

    @property
    def store(self) -> Store:
        """The running store."""
        return self.chat.store

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`POST /chat/stream`: one turn, streamed as SSE."""
        app = await self.open_turn(scope, await self.stream_request(scope, receive))
        await app(scope, receive, send)

    async def stream_request(self, scope: Scope, receive: Receive) -> TurnRequest:
        """The turn a `POST /chat/stream` body asks for (refusals raised); the stream lane then calls `open_turn`
        itself, so that an open stream keeps no frame of `stream` (the wire body is not kept either)."""
        settings = self.settings
        request: ChatRequest = await self.bodies.decode(scope, receive, ChatRequest)
        check_chat_request(request, settings.max_messages_per_request, settings.max_message_chars)
        if self.drain.draining:
            raise ShuttingDown()
        return turn_request(request, frame_request_id(scope))

    async def open_turn(
        self,
        scope: Scope,
        asked: TurnRequest,
        framer: Framer | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        reframe: Reframer | None = None,
        before_open: Callable[[], Awaitable[None]] | None = None,
    ) -> ASGIApp:
        """Claim and open one turn; the ASGI app that streams it, in a dialect: its `framer` (None: the
        `/chat/stream` frames) and `headers`, and for a resumable turn, the `reframe` of its kept frames (None: the
        kept frames are the dialect's own). The stream lane awaits the app itself, so that an open stream keeps no
        frame of this; a live stream releases its claim when it ends (`stream_closed`).

        `before_open` runs once the stream is claimed (past the user's stream limit), just before the turn opens:
        a dialect's change to the history that only a turn that runs may make (a regenerated reply dropped).
        """
        settings = self.settings
        hub = self.running_hub()
        # Claimed before the turn opens (a refused stream saves nothing), when its title and life are not known yet;
        # its `error` frames carry the request's id, also when replayed.
        info = StreamInfo(
            new_stream_id(), asked.user_id, asked.conversation_id, "", asked.resume, 0, asked.request_id, asked.reply_id
        )
        await hub.claim(info, settings.max_streams_per_user)  # TooManyStreams (429) past the user's limit
        try:
            if before_open is not None:
                await before_open()
            turn = await self.chat.open_turn(asked)
        except ConversationForbidden:
            await release_whole(hub, info)
            base = SSE_HEADERS if headers is None else headers
            message = "This conversation belongs to another user."
            return ErrorStream(message, "conversation_forbidden", asked.request_id, base + id_header(scope), framer)
        except BaseException:
            await release_whole(hub, info)
            raise
        released_by_producer = False
        try:
            info = msgspec.structs.replace(info, title=turn.title, life=turn.life)  # bound complete, below
            if asked.resume:  # docs/resume.md: the reply is produced apart from this connection, which follows it
                producer = DetachedTurn(
                    turn, info, hub, settings.resume_grace_seconds, self.drain, self.producers, self.metrics
                )
                await hub.bind(info, producer)
                producer.start()
                released_by_producer = True  # from here, the producer releases its own stream when it ends
                heartbeat, send_timeout = settings.heartbeat_seconds, settings.send_timeout_seconds
                reader = FollowStream(
                    hub,
                    info.stream_id,
                    0,
                    heartbeat,
                    send_timeout,
                    producer,
                    asked.request_id,
                    id_header(scope),
                    reframe,
                    headers,
                )
                scope[FOLLOWED] = FollowedTurn(turn, reader)  # read when the request ends, for the log line
                return reader
            stream = TurnStream(turn, settings.heartbeat_seconds, settings.send_timeout_seconds, self.drain, framer)
            stream.headers = stream_headers(info.stream_id, headers) + id_header(scope)
            await hub.bind(info, stream)
        except BaseException:
            if not released_by_producer:
                await release_whole(hub, info)
            raise
        stream.claim, stream.closer = info, self
        scope[STREAM] = stream  # read when the request ends, for the metrics and the log line
        self.metrics.stream_opened(stream)
        return stream

    async def stream_closed(self, stream: TurnStream) -> None:
        """A live stream ended: no longer counted open, and its claim released."""
        self.metrics.stream_closed(stream)
        assert isinstance(stream.claim, StreamInfo)
        await release_whole(self.running_hub(), stream.claim)

    async def history(self, request: Request) -> Response:
        """`GET /chat/history`: the user's default conversation."""
        user_id = query_user(request)
        messages = await self.store.history(user_id)
        return JSON(HistoryReply(user_id, public_messages(messages)))

    async def clear(self, request: Request) -> Response:
        """`POST /chat/clear`: delete all of the user's conversations."""
        body: UserOnlyRequest = await self.bodies.decode(request.scope, request.receive, UserOnlyRequest)
        await self.store.clear(body.userId)
        return JSON(ClearReply(True, body.userId))

    async def conversations(self, request: Request) -> Response:
        """`GET /chat/conversations`: the user's conversations, newest first."""
        errors: list[dict[str, Any]] = []
        user_id = query_id(request, "userId", errors)
        limit = query_int(request, "limit", 50, errors)
        if errors:
            raise ValidationFailed(errors)
        limit = max(1, min(self.settings.max_conversations_limit, limit))
        rows = await self.store.list_conversations(user_id, limit)
        return JSON(ConversationsReply(user_id, await self.control.with_active_streams(user_id, rows)))

    async def conversation(self, request: Request) -> Response:
        """`GET /chat/conversation`: one conversation's messages ([] when unknown or foreign)."""
        errors: list[dict[str, Any]] = []
        user_id = query_id(request, "userId", errors)
        conversation_id = query_id(request, "conversationId", errors)
        query = request.query_params
        paged = "limit" in query or "before" in query
        limit = min(max(1, query_int(request, "limit", 0, errors)), _PAGE_MAX) if "limit" in query else None
        before = min(max(0, query_int(request, "before", 0, errors)), _PAGE_MAX) if "before" in query else None
        if errors:
            raise ValidationFailed(errors)
        page = ConversationPage([], 0)
        if self.store.persistent:  # without persistence the endpoint shows no messages, as the reference's
            page = await self.store.read(user_id, conversation_id.strip(), limit, before)
        answer = ConversationReply(user_id, conversation_id, public_messages(page.messages))
        if paged:  # docs/store.md: paging adds where the next (older) page ends, and whether there is one
            answer.nextBefore, answer.hasMore = page.start if page.start > 0 else None, page.start > 0
        return JSON(answer)

    async def create(self, request: Request) -> Response:
        """`POST /chat/conversation/create`: claim a conversation id for the user."""
        body: CreateConversationRequest = await self.bodies.decode(
            request.scope, request.receive, CreateConversationRequest
        )
        conversation_id = (body.conversationId or "").strip() or uuid.uuid4().hex
        title = (body.title or "").strip() or None
        try:
            kept = await self.store.create(body.userId, conversation_id, title)
        except ConversationForbidden:
            raise ConversationTaken() from None
        return JSON(CreateConversationReply(True, body.userId, conversation_id, kept))

    async def delete(self, request: Request) -> Response:
        """`POST /chat/conversation/delete`: delete one of the user's conversations (idempotent)."""
        body: DeleteConversationRequest = await self.bodies.decode(
            request.scope, request.receive, DeleteConversationRequest
        )
        await self.store.delete(body.userId, body.conversationId.strip())
        return JSON(DeleteConversationReply(True, body.userId, body.conversationId))

    async def healthz(self, request: Request) -> Response:
        """`GET /healthz`: 200 when the store answers."""
        try:
            await self.store.ping()
        except Exception:
            return JSON(HealthReply(False, "store unavailable"), status_code=503)
        return JSON(HealthReply(True))
