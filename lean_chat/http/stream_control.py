"""Resume and Stop: `GET /chat/stream/{streamId}`, `POST /chat/stop`, and `activeStreamId` on conversation rows."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from ..config import Settings
from ..hub import Hub
from ..random_ids import uuid4_hex
from ..refusals import ValidationFailed
from ..store.base import ConversationInfo
from ..turn.detached import DetachedTurn
from ..turn.follow import FollowStream
from .json_response import JSON
from .query import query_id
from .replies import ConversationRow, ErrorReply, StopReply
from .request_id import frame_request_id, id_header
from .schema import StopRequest

__all__ = ["STREAM_ID", "StreamControl", "new_stream_id"]

# Stream ids are uuid4 hex; anything else is unknown (204) without a look-up.
STREAM_ID = re.compile(r"[0-9a-f]{32}")
# A frame id: a plain decimal count (what we wrote on `id:` lines), no sign, no more than 18 digits.
_FRAME_ID = re.compile(r"[0-9]{1,18}")


def new_stream_id() -> str:
    """A new stream id."""
    return uuid4_hex()


class StreamControl:
    """The endpoints that reach running and kept streams through the hub."""

    def __init__(
        self,
        settings: Settings,
        hub: Callable[[], Hub],
        decode: Callable[[Request, type[Any]], Awaitable[Any]],
    ) -> None:
        self.settings = settings
        self._hub = hub
        self._decode = decode

    async def resume(self, request: Request) -> ASGIApp:
        """`GET /chat/stream/{streamId}?userId=`: the frames after Last-Event-ID, then the live ones."""
        errors: list[dict[str, Any]] = []
        user_id = query_id(request, "userId", errors)
        after = _last_event_id(request, errors)
        if errors:
            raise ValidationFailed(errors)
        stream_id = request.path_params["streamId"]
        hub = self._hub()
        found = await hub.lookup(stream_id) if STREAM_ID.fullmatch(stream_id) else None
        if found is None:
            return Response(status_code=204)  # unknown or expired: tells EventSource to stop reconnecting
        info, ended = found
        if info.user_id != user_id:
            return JSON(ErrorReply("Not Found"), status_code=404)
        if not info.resume or (ended and after >= await hub.last_id(stream_id)):
            return Response(status_code=204)  # nothing kept, or nothing left to send
        running = hub.running(stream_id)
        producer = running if isinstance(running, DetachedTurn) else None
        settings = self.settings
        heartbeat, send_timeout = settings.heartbeat_seconds, settings.send_timeout_seconds
        scope = request.scope
        return FollowStream(
            hub, stream_id, after, heartbeat, send_timeout, producer, frame_request_id(scope), id_header(scope)
        )

    async def stop(self, request: Request) -> Response:
        """`POST /chat/stop`: stop the user's stream (by id, or the conversation's running one)."""
        body: StopRequest = await self._decode(request, StopRequest)
        hub = self._hub()
        stream_id = (body.streamId or "").strip()
        conversation_id = (body.conversationId or "").strip()
        if not stream_id and not conversation_id:
            message = "Field required: streamId or conversationId"
            raise ValidationFailed([{"type": "missing", "loc": ["body", "streamId"], "msg": message, "input": None}])
        if not stream_id:
            stream_id = (await hub.active(body.userId, [conversation_id])).get(conversation_id, "")
        stopped = bool(stream_id) and STREAM_ID.fullmatch(stream_id) is not None
        stopped = stopped and await hub.stop(body.userId, stream_id)
        return JSON(StopReply(True, stopped))

    async def with_active_streams(self, user_id: str, rows: Sequence[ConversationInfo]) -> list[ConversationRow]:
        """Conversation rows with `activeStreamId` (null when nothing streams into it)."""
        active = await self._hub().active(user_id, [row.conversationId for row in rows]) if rows else {}
        return [
            ConversationRow(**msgspec.structs.asdict(row) | {"activeStreamId": active.get(row.conversationId)})
            for row in rows
        ]


def _last_event_id(request: Request, errors: list[dict[str, Any]]) -> int:
    """The id to resume after: the `Last-Event-ID` header, else `?lastEventId=`, else 0 (from the start)."""
    raw = request.headers.get("last-event-id")
    name, loc = "Last-Event-ID", "header"
    if raw is None:
        raw, name, loc = request.query_params.get("lastEventId"), "lastEventId", "query"
    if raw is None or raw.strip() == "":
        return 0
    if _FRAME_ID.fullmatch(raw.strip()):
        return int(raw.strip())
    message = "Input should be a frame id (a non-negative integer of at most 18 digits)"
    errors.append({"type": "int_parsing", "loc": [loc, name], "msg": message, "input": raw})
    return 0
