"""Request shapes as msgspec Structs, and their validation errors in FastAPI's `detail` shape (refusals.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

from ..refusals import BodyUnreadable, ValidationFailed

__all__ = [
    "MAX_ID_CHARS",
    "ROLES",
    "ChatMessage",
    "ChatRequest",
    "CreateConversationRequest",
    "DeleteConversationRequest",
    "StopRequest",
    "UserOnlyRequest",
    "decode_body",
    "detail_entry",
    "id_errors",
    "id_lengths",
    "nul_errors",
    "query_error",
    "too_long",
]

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


class ChatMessage(msgspec.Struct, omit_defaults=False):
    """One message of a chat."""

    role: Role
    content: str
    meta: dict[str, Any] | None = None


class ChatRequest(msgspec.Struct):
    """The body of `POST /chat/stream`."""

    userId: str
    messages: list[ChatMessage]
    params: dict[str, Any] | None = None


class UserOnlyRequest(msgspec.Struct):
    """The body of `POST /chat/clear`."""

    userId: str


class CreateConversationRequest(msgspec.Struct):
    """The body of `POST /chat/conversation/create`."""

    userId: str
    conversationId: str | None = None
    title: str | None = None


class DeleteConversationRequest(msgspec.Struct):
    """The body of `POST /chat/conversation/delete`."""

    userId: str
    conversationId: str


class StopRequest(msgspec.Struct):
    """The body of `POST /chat/stop`: the stream, or the conversation whose running stream is meant."""

    userId: str
    streamId: str | None = None
    conversationId: str | None = None


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t)
    for t in (ChatRequest, UserOnlyRequest, CreateConversationRequest, DeleteConversationRequest, StopRequest)
}

# Field rules per body type: (name, kind, required). Kinds: "id" (an id: string of 1..MAX_ID_CHARS characters),
# "id?" (an id or absent/null), "str?", "messages", "dict?". No string anywhere in a body may hold U+0000.
_RULES: dict[type[Any], tuple[tuple[str, str, bool], ...]] = {
    ChatRequest: (("userId", "id", True), ("messages", "messages", True), ("params", "dict?", False)),
    UserOnlyRequest: (("userId", "id", True),),
    CreateConversationRequest: (("userId", "id", True), ("conversationId", "id?", False), ("title", "str?", False)),
    DeleteConversationRequest: (("userId", "id", True), ("conversationId", "id", True)),
    StopRequest: (("userId", "id", True), ("streamId", "id?", False), ("conversationId", "id?", False)),
}

# The longest id (userId, conversationId, streamId) a client may send, in characters: every store keeps and
# indexes ids of this length (PostgreSQL's b-tree refuses index rows over about 2.7 kB).
MAX_ID_CHARS = 256
# The lengths each id rule allows, in characters (fewest, most): decode_body checks them, openapi.py shows them.
_ID_LENGTHS: dict[str, tuple[int, int]] = {"id": (1, MAX_ID_CHARS), "id?": (0, MAX_ID_CHARS)}
# PostgreSQL's text cannot hold U+0000; it is refused in every client string so that every store answers alike.
_NUL = "\x00"
_NUL_REASON = "the NUL character (U+0000) is not allowed"


_TOO_DEEP = "JSON is nested too deeply"


def decode_body(body: bytes, kind: type[Any]) -> Any:
    """Decode and validate a JSON body into `kind`, or raise ValidationFailed with every error found."""
    try:
        value = _decoders[kind].decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        problem = str(exc)
    except UnicodeDecodeError:
        raise BodyUnreadable() from None
    except RecursionError:
        raise ValidationFailed([_json_invalid(0, _TOO_DEEP)]) from None
    else:
        try:
            if not _breaks_string_rules(body, value, kind):
                return value
        except RecursionError:  # the walk for NULs, deep in a body msgspec could just read
            raise ValidationFailed([_json_invalid(0, _TOO_DEEP)]) from None
        problem = ""
    raise ValidationFailed(_explain(body, kind, problem))


def _breaks_string_rules(body: bytes, value: Any, kind: type[Any]) -> bool:
    """True when a decoded body breaks a rule msgspec does not check: an id's length, or a NUL in any string."""
    for name, rule, _ in _RULES[kind]:
        if rule in _ID_LENGTHS:
            text = getattr(value, name)
            fewest, most = _ID_LENGTHS[rule]
            if text is not None and not fewest <= len(text) <= most:
                return True
    if kind is ChatRequest and value.params is not None:
        cid = value.params.get("conversationId")
        if isinstance(cid, str) and len(cid) > MAX_ID_CHARS:
            return True
    # A NUL is always written as an escape: a body without a backslash (found at memchr's speed) holds none.
    return b"\\" in body and any(_holds_nul(getattr(value, name)) for name, _, _ in _RULES[kind])


def _holds_nul(value: Any) -> bool:
    """True when a decoded value holds U+0000 in a string or an object key (a search per string, at memchr's speed)."""
    if isinstance(value, str):
        return _NUL in value
    if isinstance(value, ChatMessage):
        return _NUL in value.content or (value.meta is not None and _holds_nul(value.meta))
    if isinstance(value, dict):
        return any(_NUL in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _explain(body: bytes, kind: type[Any], problem: str) -> list[dict[str, Any]]:
    """Every validation error of a body, in the order and shape FastAPI/pydantic report them."""
    if not body:
        return [_error("missing", ["body"], "Field required", None)]
    try:
        # The error path only: the standard library's parser gives the position and wording FastAPI reports.
        data = json.loads(body, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        return [_json_invalid(exc.pos, exc.msg)]
    except _IntegerTooLong as exc:
        return [_json_invalid(body.find(exc.text.encode()), f"Integer too long: {exc.digits} digits")]
    except UnicodeDecodeError:
        raise BodyUnreadable() from None
    except RecursionError:
        return [_json_invalid(0, _TOO_DEEP)]
    if not isinstance(data, dict):
        return [_not_an_object(["body"], data)]
    errors: list[dict[str, Any]] = []
    for name, rule, required in _RULES[kind]:
        loc: list[str | int] = ["body", name]
        if name not in data:
            if required:
                errors.append(_error("missing", loc, "Field required", data))
            continue
        _check_field(data[name], rule, loc, errors)
        if name == "params" and isinstance(data[name], dict) and isinstance(data[name].get("conversationId"), str):
            errors += _too_long(data[name]["conversationId"], [*loc, "conversationId"])
        try:
            errors += [_nul_error(at, text) for at, text in _nul_locations(data[name], loc)]
        except RecursionError:
            return [_json_invalid(0, _TOO_DEEP)]
    # Valid by the rules yet refused by msgspec: a lone surrogate, NaN/Infinity or a number out of range.
    return errors or [_json_invalid(0, f"Unsupported JSON value: {problem}")]


class _IntegerTooLong(Exception):
    """An integer literal past the digits Python's `int()` reads from a string (4,300 by default)."""

    def __init__(self, text: str) -> None:
        super().__init__(text[:20])
        self.text = text
        self.digits = len(text.lstrip("-"))


def _bounded_int(text: str) -> int:
    """`int(text)` for the JSON parser, or _IntegerTooLong instead of a ValueError from the int-string limit."""
    try:
        return int(text)
    except ValueError:
        raise _IntegerTooLong(text) from None


def _json_invalid(position: int, reason: str) -> dict[str, Any]:
    """The error for a body that is not JSON lean_chat can read."""
    return {
        "type": "json_invalid",
        "loc": ["body", position],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": reason},
    }


def _check_field(value: Any, rule: str, loc: list[str | int], errors: list[dict[str, Any]]) -> None:
    """Append the errors of one field's value to `errors`."""
    if rule in ("id?", "str?", "dict?") and value is None:
        return
    if rule in ("id", "id?", "str?"):
        if not isinstance(value, str):
            errors.append(_error("string_type", loc, "Input should be a valid string", value))
        elif rule in _ID_LENGTHS and len(value) < _ID_LENGTHS[rule][0]:
            errors.append(_too_short(value, loc, _ID_LENGTHS[rule][0]))
        elif rule != "str?":
            errors += _too_long(value, loc)
    elif rule == "dict?":
        if not isinstance(value, dict):
            errors.append(_error("dict_type", loc, "Input should be a valid dictionary", value))
    elif rule == "messages":
        if not isinstance(value, list):
            errors.append(_error("list_type", loc, "Input should be a valid list", value))
            return
        for index, item in enumerate(value):
            _check_message(item, [*loc, index], errors)


def _check_message(item: Any, loc: list[str | int], errors: list[dict[str, Any]]) -> None:
    """Append the errors of one chat message to `errors`."""
    if not isinstance(item, dict):
        errors.append(_not_an_object(loc, item))
        return
    if "role" not in item:
        errors.append(_error("missing", [*loc, "role"], "Field required", item))
    elif item["role"] not in ROLES or not isinstance(item["role"], str):
        expected = "'system', 'user' or 'assistant'"
        errors.append(
            _error("literal_error", [*loc, "role"], f"Input should be {expected}", item["role"], {"expected": expected})
        )
    if "content" not in item:
        errors.append(_error("missing", [*loc, "content"], "Field required", item))
    elif not isinstance(item["content"], str):
        errors.append(_error("string_type", [*loc, "content"], "Input should be a valid string", item["content"]))
    if item.get("meta") is not None and not isinstance(item["meta"], dict):
        errors.append(_error("dict_type", [*loc, "meta"], "Input should be a valid dictionary", item["meta"]))


def _too_short(value: str, loc: list[str | int], fewest: int) -> dict[str, Any]:
    """The error of an id under `fewest` characters (worded as pydantic words it)."""
    message = f"String should have at least {fewest} character{'' if fewest == 1 else 's'}"
    return _error("string_too_short", loc, message, value, {"min_length": fewest})


def too_long(value: str, loc: list[str | int]) -> list[dict[str, Any]]:
    """The error of an id over MAX_ID_CHARS characters, if it is."""
    return _too_long(value, loc)


def nul_errors(value: Any, loc: list[str | int]) -> list[dict[str, Any]]:
    """The errors of every string (or object key) holding U+0000 in a decoded JSON value."""
    return [_nul_error(at, text) for at, text in _nul_locations(value, loc)]


def detail_entry(
    kind: str, loc: list[str | int], msg: str, value: Any, ctx: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One entry of a 422 `detail` list, as FastAPI shapes it."""
    return _error(kind, loc, msg, value, ctx)


def _too_long(value: str, loc: list[str | int]) -> list[dict[str, Any]]:
    """The error of an id over MAX_ID_CHARS characters, if it is."""
    if len(value) <= MAX_ID_CHARS:
        return []
    message = f"String should have at most {MAX_ID_CHARS} characters"
    return [_error("string_too_long", loc, message, value, {"max_length": MAX_ID_CHARS})]


def _nul_locations(value: Any, loc: list[str | int]) -> Iterator[tuple[list[str | int], str]]:
    """Where a JSON value holds a string (or an object key) with U+0000 in it, and that string."""
    if isinstance(value, str):
        if _NUL in value:
            yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _NUL in key:
                yield [*loc, key], key
            yield from _nul_locations(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_locations(item, [*loc, index])


def _nul_error(loc: list[str | int], value: str) -> dict[str, Any]:
    """The error of a string holding U+0000 (shaped as FastAPI reports a validator's ValueError)."""
    return _error("value_error", loc, f"Value error, {_NUL_REASON}", value, {"error": _NUL_REASON})


def id_errors(value: str, loc: list[str | int]) -> list[dict[str, Any]]:
    """The errors of an id given outside a body (a query parameter): too long, or holding U+0000."""
    return _too_long(value, loc) + ([_nul_error(loc, value)] if _NUL in value else [])


def _not_an_object(loc: list[str | int], value: Any) -> dict[str, Any]:
    """The error for a value that should have been a JSON object."""
    return _error(
        "model_attributes_type", loc, "Input should be a valid dictionary or object to extract fields from", value
    )


def _error(kind: str, loc: list[str | int], msg: str, value: Any, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of a 422 `detail` list."""
    entry: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        entry["ctx"] = ctx
    return entry


def id_lengths(kind: type[Any]) -> list[tuple[str, int, int]]:
    """The id fields of a body type, each with the fewest and most characters it allows (for the OpenAPI document)."""
    return [(name, *_ID_LENGTHS[rule]) for name, rule, _ in _RULES.get(kind, ()) if rule in _ID_LENGTHS]


def query_error(kind: str, name: str, msg: str, value: Any) -> dict[str, Any]:
    """One 422 `detail` entry for a query parameter."""
    return _error(kind, ["query", name], msg, value)
