"""The AI SDK dialect's endpoints: `POST /chat/ui`, its resume `GET /chat/ui/{chatId}/stream`, and the history
as UIMessages, `GET /chat/ui/{chatId}/messages`. A thin layer: each request becomes the engine's TurnRequest, and
the engine's batches and outcome become UI chunks (ui_stream.py); streaming, resume, Stop, limits, auth,
ownership and metrics are the `/chat/stream` ones (endpoints.py, stream_control.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..hub import Hub
from ..random_ids import random_hex
from ..refusals import ShuttingDown, ValidationFailed
from ..scope_keys import AUTH_USER
from ..turn.detached import DetachedTurn
from ..turn.follow import FollowStream
from ..turn.turn_request import TurnRequest
from .auth import check_user
from .chat_params import max_steps, mock_knobs, reasoning_options, tool_names
from .json_response import JSON
from .limits import check_contents
from .query import query_id
from .request_id import frame_request_id, id_header
from .schema import detail_entry, id_errors
from .stream_control import STREAM_ID
from .ui_messages import plan_turn, ui_messages
from .ui_schema import UIAsk, decode_ui_request
from .ui_stream import UI_HEADERS, UIFramer, UIReframer

if TYPE_CHECKING:
    from .endpoints import Endpoints

__all__ = ["UIDialect", "new_message_id"]


_EVERY_EVENT = frozenset(("reasoning", "tools"))


def new_message_id() -> str:
    """A new reply id (the `start` chunk's `messageId`, kept as the reply's `meta.id`)."""
    return "lc" + random_hex(12)


def _trimmed(value: Any) -> str:
    """A string option trimmed; anything else ""."""
    return value.strip() if isinstance(value, str) else ""


class UIDialect:
    """The endpoints of the AI SDK dialect, over the app's engine, store and hub."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`POST /chat/ui`: one turn, streamed as UI message chunks (down the stream lane, as `/chat/stream`)."""
        endpoints = self.endpoints
        settings = endpoints.settings
        ask = decode_ui_request(await endpoints.bodies.read_json(scope, receive))
        user_id = _user(scope, ask)
        check_contents(
            [m.content for m in ask.messages], settings.max_messages_per_request, settings.max_message_chars, "parts"
        )
        if endpoints.drain.draining:
            raise ShuttingDown()
        store = endpoints.store
        chat_id = ask.chat_id.strip()
        stored = (await store.read(user_id, chat_id)).messages
        plan = plan_turn(stored, ask)
        keep = plan.keep

        async def replace() -> None:  # once the stream is claimed: a refused one (429) drops nothing
            if keep is not None:
                await store.truncate(user_id, chat_id, keep)

        reply_id = new_message_id()
        options = ask.options
        asked = TurnRequest(
            user_id=user_id,
            conversation_id=chat_id,
            messages=plan.incoming(stored),
            model=_trimmed(options.get("model")),
            resume=options.get("resume") is True,
            mock=mock_knobs(options.get("mock")),
            request_id=frame_request_id(scope),
            reply_id=reply_id,
            events=_EVERY_EVENT,  # the UI stream shows them all (and a resumable one keeps them for its readers)
            tools=tool_names(options.get("tools")),
            max_steps=max_steps(options.get("maxSteps")),
            reasoning=reasoning_options(options.get("reasoning")),
        )
        framer, reframe = UIFramer(reply_id), UIReframer(reply_id)
        app = await endpoints.open_turn(scope, asked, framer, UI_HEADERS, reframe, replace)
        await app(scope, receive, send)

    async def resume(self, request: Request) -> ASGIApp:
        """`GET /chat/ui/{chatId}/stream`: the chat's running resumable stream from its start, then live; else 204."""
        user_id, chat_id = _user_and_chat(request)
        hub: Hub = self.endpoints.running_hub()
        stream_id = (await hub.active(user_id, [chat_id])).get(chat_id) if chat_id else None
        found = await hub.lookup(stream_id) if stream_id and STREAM_ID.fullmatch(stream_id) else None
        if stream_id is None or found is None:
            return Response(status_code=204)  # nothing runs: useChat's "nothing to resume"
        info, ended = found
        if info.user_id != user_id or not info.resume or ended:
            return Response(status_code=204)
        running = hub.running(stream_id)
        producer = running if isinstance(running, DetachedTurn) else None
        settings = self.endpoints.settings
        scope = request.scope
        return FollowStream(
            hub,
            stream_id,
            0,  # the SDK's resume is a replay: from the start (`resumeStreamIsReplay`)
            settings.heartbeat_seconds,
            settings.send_timeout_seconds,
            producer,
            frame_request_id(scope),
            id_header(scope),
            UIReframer(info.reply_id),
            UI_HEADERS,
        )

    async def messages(self, request: Request) -> Response:
        """`GET /chat/ui/{chatId}/messages`: the conversation as UIMessage[] ([] when unknown or another user's)."""
        user_id, chat_id = _user_and_chat(request)
        page = await self.endpoints.store.read(user_id, chat_id)
        return JSON(ui_messages(page.messages, page.start))


def _user(scope: Scope, ask: UIAsk) -> str:
    """Who asks: the authenticated caller, else the body's `userId` (the caller's own, when both are given)."""
    caller = scope.get(AUTH_USER)
    if ask.user_id is not None:
        check_user(scope, ask.user_id)
        return ask.user_id
    if isinstance(caller, str):
        return caller
    raise ValidationFailed([detail_entry("missing", ["body", "userId"], "Field required", None)])


def _user_and_chat(request: Request) -> tuple[str, str]:
    """The caller (authenticated, else `?userId=`) and the path's chat id, or a 422 naming what is wrong."""
    errors: list[dict[str, Any]] = []
    caller = request.scope.get(AUTH_USER)
    user_id = caller if isinstance(caller, str) else query_id(request, "userId", errors)
    chat_id: str = request.path_params["chatId"]
    errors += id_errors(chat_id, ["path", "chatId"])
    if errors:
        raise ValidationFailed(errors)
    return user_id, chat_id.strip()
