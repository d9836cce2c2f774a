"""OpenAI's streamed tool calls gathered from their fragments (`delta.tool_calls[]`), as each server sends them."""

from __future__ import annotations

import msgspec

from .events import ToolCall
from .step_output import is_whole_json, new_call_id

__all__ = ["ToolCallDelta", "ToolCallGatherer", "ToolFunction"]


class ToolFunction(msgspec.Struct, gc=False):
    """The function of a fragment: the name (first fragment only) and a piece of the arguments' JSON text."""

    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(msgspec.Struct, gc=False):
    """One fragment of a streamed tool call: only the first has `id` and `name`; `index` says which call."""

    index: int | None = None
    id: str | None = None
    function: ToolFunction | None = None


class _Gathered:
    """A tool call being gathered."""

    __slots__ = ("args", "id", "name")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.name = ""
        self.args: list[str] = []


class ToolCallGatherer:
    """Fragments gathered into calls by `index`, or by `id` where a server omits or reuses the index.

    A fragment with an id not seen yet starts a call (even at an index already used: a server that sends every call
    at index 0); one with no id continues the call last seen at its index, or, with no index either, the last call
    (unless it names a tool while that call already has a name: then it starts one).
    """

    __slots__ = ("by_id", "by_index", "calls")

    def __init__(self) -> None:
        self.calls: list[_Gathered] = []
        self.by_index: dict[int, _Gathered] = {}
        self.by_id: dict[str, _Gathered] = {}

    def take(self, fragments: list[ToolCallDelta]) -> None:
        """Add one chunk's fragments."""
        for fragment in fragments:
            function = fragment.function
            name = function.name if function is not None else None
            index, call_id = fragment.index, fragment.id
            target: _Gathered | None = None
            if call_id:
                target = self.by_id.get(call_id)
                if target is None and index is not None:
                    same = self.by_index.get(index)
                    if same is not None and not same.id:  # this call's id came after its first fragment
                        target = same
                        same.id = call_id
                        self.by_id[call_id] = same
            elif index is not None:
                target = self.by_index.get(index)
            elif self.calls and not (name and self.calls[-1].name):
                target = self.calls[-1]
            if target is None:
                target = _Gathered(call_id or "")
                self.calls.append(target)
                if call_id:
                    self.by_id[call_id] = target
            if index is not None:
                self.by_index[index] = target
            if name and not target.name:
                target.name = name
            if function is not None and function.arguments:
                target.args.append(function.arguments)

    def complete(self, cut: bool) -> list[ToolCall]:
        """The calls gathered so far (ids made where none came), then forgotten; when `cut`, only whole JSON ones."""
        out = []
        for gathered in self.calls:
            args = "".join(gathered.args)
            if cut and not is_whole_json(args):
                continue  # cut off by the token limit: half-streamed arguments are not a call
            out.append(ToolCall(gathered.id or new_call_id(), gathered.name, args))
        self.calls = []
        self.by_index = {}
        self.by_id = {}
        return out
