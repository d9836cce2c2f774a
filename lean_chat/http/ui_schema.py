"""The body of `POST /chat/ui` (the AI SDK's `DefaultChatTransport`): read, checked, and held as a `UIAsk`.

The transport sends `{id, messages: UIMessage[], trigger, messageId, ...body}`; a `useChat` app's own options
(`body: {...}`) arrive beside them at the top level. Every refusal is a FastAPI-shaped 422 naming what is wrong
and where; a part type lean_chat does not read yet (a file) is refused by name, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from ..refusals import BodyUnreadable, ValidationFailed
from .schema import ROLES, detail_entry, nul_errors, too_long

__all__ = [
    "CONTEXT_PARTS",
    "UI_CHUNKS",
    "UIAsk",
    "UIChatRequest",
    "UIIncoming",
    "UIMessage",
    "UIPart",
    "decode_ui_request",
]

# Parts whose text is the message's content.
_TEXT = "text"
# Parts a client sends back as it received them from a stream (steps, reasoning, tool calls): accepted, not sent
# to the model again as text (a stored message keeps its own).
CONTEXT_PARTS = frozenset({"step-start", "reasoning", "dynamic-tool"})
_TOOL_PREFIX = "tool-"
TRIGGERS = ("submit-message", "regenerate-message")
_SUPPORTED = "text, reasoning, step-start, tool-*, dynamic-tool"


class UIPart(msgspec.Struct):
    """One part of a UIMessage, as lean_chat reads it (`text` parts are the content; see docs/ai-sdk.md)."""

    type: str
    text: str | msgspec.UnsetType = msgspec.UNSET


class UIMessage(msgspec.Struct):
    """A message as the AI SDK keeps it: an id, a role, ordered parts, and free metadata."""

    id: str
    role: Literal["system", "user", "assistant"]
    parts: list[UIPart]
    metadata: Any = None


class UIChatRequest(msgspec.Struct):
    """The body of `POST /chat/ui`: the transport's fields, and the app's options beside them (`body: {...}`):
    `model`, `resume`, `mock`, and `tools`, `maxSteps`, `reasoning` as `params` of `/chat/stream` has them."""

    id: str
    messages: list[UIMessage]
    trigger: Literal["submit-message", "regenerate-message"] | None = None
    messageId: str | None = None
    userId: str | None = None
    model: str | None = None
    resume: bool | None = None
    mock: dict[str, Any] | None = None
    tools: list[str] | None = None
    maxSteps: int | None = None
    reasoning: dict[str, Any] | None = None


class StartChunk(msgspec.Struct, tag="start", tag_field="type"):
    """The stream's first chunk: the id the reply is saved under."""

    messageId: str


class StepChunk(msgspec.Struct, tag="start-step", tag_field="type"):
    """A step begins (lean_chat's replies are one step until tools come)."""


class TextStartChunk(msgspec.Struct, tag="text-start", tag_field="type"):
    """A text part begins; its deltas and its end carry the same `id`."""

    id: str


class TextDeltaChunk(msgspec.Struct, tag="text-delta", tag_field="type"):
    """One token of a text part."""

    id: str
    delta: str


class TextEndChunk(msgspec.Struct, tag="text-end", tag_field="type"):
    """A text part ends."""

    id: str


class StepEndChunk(msgspec.Struct, tag="finish-step", tag_field="type"):
    """A step ends."""


class FinishMetadata(msgspec.Struct):
    """What `finish` says of the reply: who made it, its token usage (as `done.usage`), its conversation."""

    provider: str
    usage: dict[str, int]
    conversationId: str
    stopped: bool | msgspec.UnsetType = msgspec.UNSET


class FinishChunk(msgspec.Struct, tag="finish", tag_field="type"):
    """The reply is complete (or stopped by `POST /chat/stop`: `messageMetadata.stopped`); `data: [DONE]` follows."""

    finishReason: Literal["stop"]
    messageMetadata: FinishMetadata


class ErrorChunk(msgspec.Struct, tag="error", tag_field="type"):
    """The turn failed: our `error` frame's message and code (docs/wire.md); `data: [DONE]` follows."""

    errorText: str
    code: str
    requestId: str | msgspec.UnsetType = msgspec.UNSET


# The chunks lean_chat writes, in the order a reply has them (for the OpenAPI document).
UI_CHUNKS: tuple[type[Any], ...] = (
    StartChunk,
    StepChunk,
    TextStartChunk,
    TextDeltaChunk,
    TextEndChunk,
    StepEndChunk,
    FinishChunk,
    ErrorChunk,
)


@dataclass(frozen=True, slots=True)
class UIIncoming:
    """One client message as a turn reads it: its id, role, text, and metadata."""

    id: str
    role: str
    content: str
    metadata: Any


@dataclass(frozen=True, slots=True)
class UIAsk:
    """A checked `POST /chat/ui` body."""

    chat_id: str
    messages: list[UIIncoming]
    trigger: str
    message_id: str | None
    user_id: str | None  # from the body; the authenticated caller, when there is one, wins (ui_endpoints.py)
    options: dict[str, Any]  # the body's other keys: model, resume, mock...


_decode = msgspec.json.Decoder().decode


def decode_ui_request(body: bytes) -> UIAsk:
    """The body as a UIAsk, or ValidationFailed (422) with every error found."""
    if not body:
        raise ValidationFailed([detail_entry("missing", ["body"], "Field required", None)])
    try:
        data = _decode(body)
    except UnicodeDecodeError:
        raise BodyUnreadable() from None
    except (msgspec.DecodeError, RecursionError) as exc:
        reason = "JSON is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ValidationFailed([_json_invalid(reason)]) from None
    if not isinstance(data, dict):
        message = "Input should be a valid dictionary or object to extract fields from"
        raise ValidationFailed([detail_entry("model_attributes_type", ["body"], message, data)])
    errors: list[dict[str, Any]] = []
    try:
        errors += nul_errors(data, ["body"])
    except RecursionError:
        raise ValidationFailed([_json_invalid("JSON is nested too deeply")]) from None
    chat_id = _id(data, "id", errors, required=True)
    message_id = _id(data, "messageId", errors, required=False)
    user_id = _id(data, "userId", errors, required=False)
    trigger = data.get("trigger")
    if trigger is None:
        trigger = TRIGGERS[0]
    elif trigger not in TRIGGERS:
        expected = "'submit-message' or 'regenerate-message'"
        ctx = {"expected": expected}
        errors.append(detail_entry("literal_error", ["body", "trigger"], f"Input should be {expected}", trigger, ctx))
    messages = _messages(data, errors)
    if errors:
        raise ValidationFailed(errors)
    options = {key: value for key, value in data.items() if key not in _TRANSPORT_FIELDS}
    return UIAsk(chat_id or "", messages, str(trigger), message_id, user_id, options)


_TRANSPORT_FIELDS = frozenset({"id", "messages", "trigger", "messageId", "userId"})


def _json_invalid(reason: str) -> dict[str, Any]:
    """The error of a body that is not JSON lean_chat can read."""
    return detail_entry("json_invalid", ["body", 0], "JSON decode error", {}, {"error": reason})


def _id(
    data: dict[str, Any], name: str, errors: list[dict[str, Any]], required: bool, at: list[str | int] | None = None
) -> str | None:
    """An id field (1 to 256 characters, schema.MAX_ID_CHARS), or None when absent and optional."""
    loc: list[str | int] = [*(at or ["body"]), name]
    value = data.get(name)
    if value is None:
        if required:
            errors.append(detail_entry("missing", loc, "Field required", data if name not in data else None))
        return None
    if not isinstance(value, str):
        errors.append(detail_entry("string_type", loc, "Input should be a valid string", value))
        return None
    if not value.strip():
        errors.append(
            detail_entry("string_too_short", loc, "String should have at least 1 character", value, {"min_length": 1})
        )
        return None
    errors += too_long(value, loc)
    return value


def _required_list(
    container: dict[str, Any], key: str, loc: list[str | int], errors: list[dict[str, Any]]
) -> list[Any]:
    """`container[key]`, a list that must be there; [] with the error noted when it is missing or not a list."""
    if key not in container:
        errors.append(detail_entry("missing", loc, "Field required", container))
        return []
    value = container[key]
    if not isinstance(value, list):
        errors.append(detail_entry("list_type", loc, "Input should be a valid list", value))
        return []
    return value


def _messages(data: dict[str, Any], errors: list[dict[str, Any]]) -> list[UIIncoming]:
    """The `messages` list, each one checked."""
    loc: list[str | int] = ["body", "messages"]
    value = _required_list(data, "messages", loc, errors)
    found = [_message(item, [*loc, index], errors) for index, item in enumerate(value)]
    return [message for message in found if message is not None]


def _message(item: Any, loc: list[str | int], errors: list[dict[str, Any]]) -> UIIncoming | None:
    """One UIMessage: `id`, `role`, and parts lean_chat reads (text), accepts (steps, reasoning, tools) or refuses."""
    if not isinstance(item, dict):
        message = "Input should be a valid dictionary or object to extract fields from"
        errors.append(detail_entry("model_attributes_type", loc, message, item))
        return None
    before = len(errors)
    message_id = _id(item, "id", errors, required=True, at=loc)
    role = item.get("role")
    if "role" not in item:
        errors.append(detail_entry("missing", [*loc, "role"], "Field required", item))
    elif not isinstance(role, str) or role not in ROLES:
        expected = "'system', 'user' or 'assistant'"
        errors.append(
            detail_entry("literal_error", [*loc, "role"], f"Input should be {expected}", role, {"expected": expected})
        )
    texts = _parts(item, loc, errors)
    if len(errors) > before or message_id is None:
        return None
    return UIIncoming(message_id, str(role), "".join(texts), item.get("metadata"))


def _parts(item: dict[str, Any], loc: list[str | int], errors: list[dict[str, Any]]) -> list[str]:
    """The texts of a message's parts, in order; a part of a type lean_chat does not read is an error naming it."""
    at: list[str | int] = [*loc, "parts"]
    parts = _required_list(item, "parts", at, errors)
    texts: list[str] = []
    for index, part in enumerate(parts):
        where: list[str | int] = [*at, index]
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(part, dict) or not isinstance(kind, str):
            errors.append(detail_entry("missing", [*where, "type"], "Field required: a part's `type` string", part))
        elif kind == _TEXT:
            text = part.get("text")
            if isinstance(text, str):
                texts.append(text)
            else:
                errors.append(detail_entry("string_type", [*where, "text"], "Input should be a valid string", text))
        elif kind not in CONTEXT_PARTS and not kind.startswith(_TOOL_PREFIX):
            shown = kind if len(kind) <= 64 else kind[:64] + "…"
            reason = f"part type {shown!r} is not supported (lean_chat reads {_SUPPORTED})"
            errors.append(
                detail_entry("value_error", [*where, "type"], f"Value error, {reason}", kind, {"error": reason})
            )
    return texts
