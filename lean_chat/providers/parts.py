"""A reply's ordered parts (text, reasoning, tool calls, tool results) and the opaque provider state they may carry.

The parts of an assistant message are kept in `meta.parts` (as `encode_parts` makes them) and come back to the
providers on `ContextMessage.parts`, in order, across every step of the turn: each run of non-result parts is what
the model said in one step, and the `tool_result` parts after it answer that step's calls. A provider rebuilds its
own transcript from them (OpenAI: an assistant message with `tool_calls`, then `role: "tool"` messages; Anthropic:
`thinking`/`redacted_thinking`/`text`/`tool_use` blocks, then a user message of `tool_result` blocks; Gemini: a
`model` content of `thought`/`text`/`functionCall` parts, then a `user` content of `functionResponse` parts).

`ProviderState` is opaque to everyone but the provider that made it (Anthropic's thinking `signature` or
`redacted_thinking` data, Gemini's `thoughtSignature`): it stays on the server (`public_parts` strips it before
anything reaches a client), and a provider replays it only when its `provider` and `model` are its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

__all__ = [
    "Part",
    "ProviderState",
    "ReasoningPart",
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
    "decode_parts",
    "encode_parts",
    "public_parts",
    "strip_state",
]


class ProviderState(msgspec.Struct, frozen=True):
    """Opaque state a provider must get back unmodified (e.g. `{"signature": ...}`), tagged with who made it."""

    provider: str  # the routing name: openai, anthropic, gemini, mock
    model: str  # the model that made it (replayed only to the same one)
    data: dict[str, Any]  # the provider's own fields, as it received them (never shown to a client)


class TextPart(msgspec.Struct, frozen=True, tag="text", tag_field="type", omit_defaults=True):
    """Visible text the model wrote."""

    text: str
    state: ProviderState | None = None  # e.g. a Gemini thoughtSignature carried on a text part


class ReasoningPart(msgspec.Struct, frozen=True, tag="reasoning", tag_field="type", omit_defaults=True):
    """The model's reasoning (complete: a step cut short keeps none); `text` may be "" for redacted thinking."""

    text: str
    state: ProviderState | None = None  # Anthropic `signature` / redacted `data`, Gemini `thoughtSignature`


class ToolCallPart(msgspec.Struct, frozen=True, tag="tool_call", tag_field="type", omit_defaults=True):
    """A complete tool call: its id (unique in the turn), the tool's name and its arguments as decoded JSON.

    `args` is the decoded JSON the model sent (an object when valid); when the model's text did not decode, it is
    that raw text (a string), and the call's result is an `invalid_arguments` error.
    """

    id: str
    name: str
    args: Any
    state: ProviderState | None = None  # e.g. Gemini's thoughtSignature on a functionCall part


class ToolResultPart(msgspec.Struct, frozen=True, tag="tool_result", tag_field="type", omit_defaults=True):
    """The answer to one tool call: its JSON `output`, or an `error` (`{"code","message"}`) with `isError` true."""

    id: str
    name: str
    output: Any = None
    error: dict[str, str] | None = None
    isError: bool = False


Part = TextPart | ReasoningPart | ToolCallPart | ToolResultPart

_to_builtins = msgspec.to_builtins


def _encoded(part: Part) -> dict[str, Any]:
    """One part as a JSON-ready dict; a tool result always says `isError`, and `output` (even null) unless failed."""
    out: dict[str, Any] = _to_builtins(part)
    if type(part) is ToolResultPart:
        if not part.isError:
            out["output"] = _to_builtins(part.output)
        out["isError"] = part.isError
    return out


def encode_parts(parts: Iterable[Part]) -> list[dict[str, Any]]:
    """Parts as JSON-ready dicts, the way `meta.parts` keeps them (opaque state included: server side only)."""
    return [_encoded(part) for part in parts]


def decode_parts(raw: Any) -> tuple[Part, ...] | None:
    """`meta.parts` read back into parts; None when it is absent or not a list of valid parts."""
    if not isinstance(raw, list):
        return None
    try:
        return tuple(msgspec.convert(raw, list[Part]))
    except msgspec.ValidationError:
        return None


def public_parts(parts: Sequence[Part]) -> list[dict[str, Any]]:
    """Parts as a client may see them: JSON-ready dicts without any opaque provider state."""
    out = encode_parts(parts)
    for part in out:
        part.pop("state", None)
    return out


def strip_state(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """A message's `meta` with every part's opaque state removed (the same dict when it has no parts)."""
    if not meta or not isinstance(meta.get("parts"), list):
        return meta
    parts = [
        {k: v for k, v in part.items() if k != "state"} if isinstance(part, dict) else part for part in meta["parts"]
    ]
    return {**meta, "parts": parts}
