"""History as the AI SDK sees it: stored messages as `UIMessage`s, and what a `POST /chat/ui` adds or replaces.

A message keeps its client id in `meta.id` (a reply: the id its `start` chunk named). A message written without
one (through `/chat/stream`) is named by its position, `lc-N`, so both dialects read one history. A reply with
reasoning or tool calls keeps its ordered parts in `meta.parts` (docs/wire.md): they become the UIMessage's parts,
each step opened by `step-start`, each tool call one `tool-NAME` part completed by its result; opaque provider
state never leaves (only the fields named here are copied).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..store.base import StoredMessage
from .ui_schema import UIAsk

__all__ = ["TurnPlan", "plan_turn", "stored_id", "ui_messages", "ui_parts"]

_POSITION_PREFIX = "lc-"
# `meta` keys that are lean_chat's own (the rest of a stored message's meta is shown as its metadata).
_FLAGS = ("partial", "stopped")
# (`parts` is shown as the UIMessage's parts, `id` as its id.)


def stored_id(message: StoredMessage, position: int) -> str:
    """A stored message's id: the client's (`meta.id`), else one made from its position."""
    meta = message.meta
    if meta is not None:
        found = meta.get("id")
        if isinstance(found, str) and found:
            return found
    return f"{_POSITION_PREFIX}{position}"


def _metadata(message: StoredMessage) -> Any:
    """What a UIMessage's `metadata` shows: the client's own, and lean_chat's flags (partial, stopped)."""
    meta = message.meta or {}
    shown = meta.get("metadata")
    flags = {name: meta[name] for name in _FLAGS if name in meta}
    if not flags:
        return shown
    return {**shown, **flags} if isinstance(shown, dict) else flags


def _tool_part(call: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
    """A tool call (and its result, when it has one) as the UIMessage's `tool-NAME` part."""
    part: dict[str, Any] = {"type": f"tool-{call.get('name', '')}", "toolCallId": str(call.get("id", ""))}
    part["input"] = call.get("args")
    if result is None:
        part["state"] = "input-available"
    elif result.get("isError"):
        error = result.get("error")
        part["state"] = "output-error"
        part["errorText"] = str(error.get("message", "")) if isinstance(error, dict) else "The tool failed."
    else:
        part["state"] = "output-available"
        part["output"] = result.get("output")
    return part


def ui_parts(message: StoredMessage) -> list[dict[str, Any]]:
    """A stored message's UIMessage parts: its `meta.parts` when it has them, else its content as one text part."""
    raw = (message.meta or {}).get("parts")
    if not isinstance(raw, list) or not raw:
        return [{"type": "text", "text": message.content}]
    parts = [part for part in raw if isinstance(part, dict)]
    results = {part.get("id"): part for part in parts if part.get("type") == "tool_result"}
    found: list[dict[str, Any]] = []
    in_step = False
    for part in parts:
        kind = part.get("type")
        if kind == "tool_result":  # a step's results follow its parts: the next part begins the next step
            in_step = False
            continue
        if kind not in ("text", "reasoning", "tool_call"):
            continue
        if not in_step:
            found.append({"type": "step-start"})
            in_step = True
        if kind == "tool_call":
            found.append(_tool_part(part, results.get(part.get("id"))))
        else:
            found.append({"type": kind, "text": str(part.get("text", ""))})
    return found


def ui_messages(messages: list[StoredMessage], start: int = 0) -> list[dict[str, Any]]:
    """Stored messages (the first at position `start`) as UIMessages."""
    found: list[dict[str, Any]] = []
    for position, message in enumerate(messages, start):
        ui: dict[str, Any] = {
            "id": stored_id(message, position),
            "role": message.role,
            "parts": ui_parts(message),
        }
        metadata = _metadata(message)
        if metadata is not None:
            ui["metadata"] = metadata
        found.append(ui)
    return found


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """What a request does to the stored history: keep its first `keep` messages (None: all), then add `new`."""

    keep: int | None
    new: list[StoredMessage]

    def incoming(self, stored: list[StoredMessage]) -> list[StoredMessage]:
        """The turn's messages for the store: the stored ones kept, then the new (so the stored are its prefix)."""
        kept = stored if self.keep is None else stored[: self.keep]
        return kept + self.new


def plan_turn(stored: list[StoredMessage], ask: UIAsk) -> TurnPlan:
    """The client's messages the server does not have (by id) are new; a regenerate drops the reply it replaces
    (the one named by `messageId`, else the last message when it is the assistant's), and a message sent again
    under its id (an edit) replaces it and what came after it."""
    ids = [stored_id(message, position) for position, message in enumerate(stored)]
    keep: int | None = None
    named = ids.index(ask.message_id) if ask.message_id is not None and ask.message_id in ids else None
    if ask.trigger == "regenerate-message":
        if named is not None:
            keep = named if stored[named].role == "assistant" else named + 1
        elif ask.message_id is None and stored and stored[-1].role == "assistant":
            keep = len(stored) - 1
    elif named is not None and stored[named].role == "user":
        keep = named
    known = set(ids if keep is None else ids[:keep])
    new: list[StoredMessage] = []
    for message in ask.messages:
        if message.id in known:
            continue
        known.add(message.id)
        meta: dict[str, Any] = {"id": message.id}
        if message.metadata is not None:
            meta["metadata"] = message.metadata
        new.append(StoredMessage(message.role, message.content, meta))
    return TurnPlan(keep, new)
