"""One step's tool calls run together: each checked, run concurrently, answered once; unanswered ones `cancelled`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping

from ..providers.parts import ToolCallPart, ToolResultPart
from ..tools.context import ToolContext
from ..tools.registry import Tool
from ..tools.runner import CallLimits, error_result, run_call
from .events import ToolResultEvent

__all__ = ["CANCELLED_MESSAGE", "UNKNOWN_TOOL_LABEL", "ToolRun"]

CANCELLED_MESSAGE = "The turn was stopped before the tool call finished."
UNKNOWN_TOOL_LABEL = "(unknown)"  # the metrics label of a call to a tool that is not registered


class ToolRun:
    """The tool calls of one step and their results; `records` says (tool label, outcome, seconds) per call."""

    def __init__(
        self,
        step: int,
        calls: list[ToolCallPart],
        tools: Mapping[str, Tool],
        limits: CallLimits,
        max_calls: int,
        user_id: str,
        conversation_id: str,
    ) -> None:
        self.step = step
        self.calls = calls
        self.tools = tools
        self.limits = limits
        self.max_calls = max_calls
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.results: dict[str, ToolResultPart] = {}
        self.records: list[tuple[str, str, float]] = []
        self._contexts: list[ToolContext] = []

    def _answer(self, result: ToolResultPart, seconds: float) -> ToolResultEvent:
        """Record one call's result; the event that says it."""
        self.results[result.id] = result
        label = result.name if result.name in self.tools else UNKNOWN_TOOL_LABEL
        self.records.append((label, (result.error or {}).get("code", "ok") if result.isError else "ok", seconds))
        return ToolResultEvent(self.step, result.id, result.name, result.output, result.error, result.isError)

    async def run(self) -> AsyncGenerator[ToolResultEvent, None]:
        """Every call's result as it comes: refusals first, then the calls that ran, as each one finishes."""
        tasks: dict[asyncio.Task[tuple[ToolResultPart, float]], ToolCallPart] = {}
        for index, call in enumerate(self.calls):
            tool = self.tools.get(call.name)
            if index >= self.max_calls:
                message = f"The step made more than {self.max_calls} tool calls; this one was not run."
                yield self._answer(error_result(call.id, call.name, "too_many_tool_calls", message), 0.0)
            elif tool is None:
                message = f"There is no tool named {call.name!r}."
                yield self._answer(error_result(call.id, call.name, "unknown_tool", message), 0.0)
            else:
                context = ToolContext(self.user_id, self.conversation_id, call.id)
                self._contexts.append(context)
                task = asyncio.ensure_future(run_call(tool, call.id, call.args, context, self.limits))
                tasks[task] = call
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: self.calls.index(tasks[t])):
                    result, seconds = task.result()
                    yield self._answer(result, seconds)
        finally:
            for task in pending:
                task.cancel()
            for context in self._contexts:
                context.cancel_event.set()  # a sync tool still running in its thread may see it

    def answered(self) -> list[ToolResultPart]:
        """Every call's result in call order; a call without one is answered `cancelled` (and counted so)."""
        out = []
        for call in self.calls:
            result = self.results.get(call.id)
            if result is None:
                result = error_result(call.id, call.name, "cancelled", CANCELLED_MESSAGE)
                self._answer(result, 0.0)
            out.append(result)
        return out
