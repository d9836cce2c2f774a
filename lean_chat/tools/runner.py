"""One tool call run safely: untrusted arguments validated, time and size limited, every failure a result."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from ..log_escape import log_failure
from ..providers.parts import ToolResultPart
from .context import ToolContext, ToolError
from .registry import Tool

__all__ = ["CallLimits", "error_result", "run_call"]

logger = logging.getLogger("lean_chat")

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class CallLimits:
    """How long a tool may run and how large its result's JSON may be."""

    timeout_seconds: float = 30.0
    max_result_bytes: int = 65536


def error_result(call_id: str, name: str, code: str, message: str) -> ToolResultPart:
    """A failed call's result, as the model and the client see it."""
    return ToolResultPart(call_id, name, error={"code": code, "message": message}, isError=True)


def _where(exc: msgspec.ValidationError) -> str:
    """A validation error's text, said of the arguments (msgspec says `$.city`)."""
    return str(exc).replace("`$`", "the arguments").replace("`$.", "`")


async def run_call(
    tool: Tool, call_id: str, args: Any, context: ToolContext, limits: CallLimits
) -> tuple[ToolResultPart, float]:
    """Run one call with its decoded JSON `args`: (the result, seconds it took); never raises but CancelledError."""
    started = time.perf_counter()
    name = tool.name
    if not isinstance(args, dict):
        return error_result(call_id, name, "invalid_arguments", "The arguments must be a JSON object."), 0.0
    try:
        params = msgspec.convert(args, tool.model.struct)
    except msgspec.ValidationError as exc:
        return error_result(call_id, name, "invalid_arguments", _where(exc)), 0.0
    kwargs = {f: getattr(params, f) for f in params.__struct_fields__}
    if tool.model.context_name is not None:
        kwargs[tool.model.context_name] = context
    timeout = tool.timeout if tool.timeout is not None else limits.timeout_seconds
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):
            if tool.is_async:
                value = await tool.fn(**kwargs)
            else:
                value = await asyncio.to_thread(tool.fn, **kwargs)
    except TimeoutError:
        context.cancel_event.set()  # a sync tool still running in its thread may see it
        took = time.perf_counter() - started
        return error_result(call_id, name, "timeout", f"The tool ran past {timeout:g} s."), took
    except ToolError as exc:
        took = time.perf_counter() - started
        return error_result(call_id, name, "tool_error", str(exc) or "The tool failed."), took
    except asyncio.CancelledError:
        context.cancel_event.set()
        raise
    except Exception as exc:
        log_failure(logger, f"tool {name!r} raised", exc, user=context.user_id, conversation=context.conversation_id)
        message = f"The tool failed ({type(exc).__name__})."
        return error_result(call_id, name, "tool_error", message), time.perf_counter() - started
    took = time.perf_counter() - started
    try:
        encoded = _encode(value)
    except (TypeError, ValueError, OverflowError):
        return error_result(call_id, name, "unserializable_result", "The tool's result is not JSON."), took
    if len(encoded) > limits.max_result_bytes:
        message = f"The result's JSON is {len(encoded)} bytes, over the limit of {limits.max_result_bytes}."
        return error_result(call_id, name, "result_too_large", message), took
    return ToolResultPart(call_id, name, output=msgspec.json.decode(encoded)), took
