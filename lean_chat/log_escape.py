"""Log text that no client string can break: messages written as `repr`, so a newline cannot forge a log line."""

from __future__ import annotations

import logging
import traceback

__all__ = ["escaped_traceback", "log_failure"]


def escaped_traceback(exc: BaseException) -> str:
    """The traceback of `exc` (and of its causes), with each exception's message written as a `repr`."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts: list[str] = []
    for position, error in enumerate(reversed(chain)):
        if position:
            parts.append("The above exception led to:\n")
        parts.append("Traceback (most recent call last):\n")
        # Frame lines name our files, functions and source lines: code, never request data.
        parts.extend(traceback.format_tb(error.__traceback__))
        try:
            message = repr(str(error))
        except Exception:  # an exception whose __str__ fails still gets its traceback logged
            message = "<unprintable>"
        parts.append(f"{type(error).__module__}.{type(error).__qualname__}: {message}\n")
    return "".join(parts).rstrip("\n")


def log_failure(logger: logging.Logger, what: str, exc: BaseException, **ids: str) -> None:
    """One error line: what failed, the ids given (each as a `repr`), then the escaped traceback."""
    named = ", ".join(f"{name} {value!r}" for name, value in ids.items())
    logger.error("%s%s:\n%s", what, f" ({named})" if named else "", escaped_traceback(exc))
