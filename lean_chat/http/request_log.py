"""What every request leaves behind: its `x-request-id`, its refusal count, its JSON log line when it ends.

The dispatcher calls `begin` and `finished` around `POST /chat/stream`, and `rest` for everything else. The stream
lane gets no `send` wrapper (every token batch would pass it): the answers written on the lane add the id header
themselves (`request_id.id_header`) and a refusal leaves its status in the scope (`request_id.answer_headers`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import Metrics
from ..metrics.summary import StreamSummary
from ..redaction import redact
from ..scope_keys import FOLLOWED, REQUEST_ID, STREAM
from ..turn.stream_summary import summarize
from .request_id import REQUEST_ID_HEADER, choose_request_id

__all__ = ["RequestLog"]

_MAX_PATH = 256
_MAX_MODEL = 128

access_logger = logging.getLogger("lean_chat.access")


class RequestLog:
    """Chooses each request's id; when it ends, counts it and (in JSON log mode) writes its line."""

    def __init__(self, metrics: Metrics, json_lines: bool, secrets: Sequence[str] = ()) -> None:
        self.metrics = metrics
        self.json_lines = json_lines
        self.secrets = list(secrets)

    def begin(self, scope: Scope) -> float:
        """A request on the stream lane starts: its id goes into the scope (its status comes back through it)."""
        started = time.perf_counter()
        choose_request_id(scope)
        return started

    async def rest(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run any other request, adding the id header to its answer."""
        started = time.perf_counter()
        request_id = choose_request_id(scope)
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(name == REQUEST_ID_HEADER for name, _ in headers):  # auth.py may have added it
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            self.finished(scope, status, started)

    def finished(self, scope: Scope, status: int, started: float) -> None:
        """Count the answer; observe the stream that ran, if one did; write the log line."""
        self.metrics.request_finished(status)
        stream = scope.get(STREAM)
        summary = None
        if stream is not None and (self.metrics.enabled or self.json_lines):
            summary = summarize(stream, started)
            self.metrics.stream_ended(summary)
        elif self.json_lines and FOLLOWED in scope:
            summary = summarize(scope[FOLLOWED], started)
        if self.json_lines:
            fields = _fields(scope, status, started, summary, self.secrets)
            access_logger.info("%s %s %d", fields["method"], fields["path"], status, extra={"fields": fields})


def _cut(text: str, limit: int, secrets: Sequence[str]) -> str:
    """At most `limit` characters of client text, keys redacted first (a key cut in two would no longer match)."""
    text = redact(text, secrets)
    return text if len(text) <= limit else text[:limit] + "…"


def _fields(
    scope: Scope, status: int, started: float, summary: StreamSummary | None, secrets: Sequence[str]
) -> dict[str, Any]:
    """The keys of one request's log line."""
    fields: dict[str, Any] = {
        "method": scope["method"],
        "path": _cut(scope["path"], _MAX_PATH, secrets),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "request_id": scope.get(REQUEST_ID),
    }
    if summary is not None:
        fields.update(
            provider=summary.served_by,
            model=_cut(summary.model, _MAX_MODEL, secrets),
            outcome=summary.outcome,
            code=summary.code,
            output_tokens=summary.output_tokens,
            input_tokens=summary.input_tokens,
            first_token_ms=None
            if summary.first_token_seconds is None
            else round(summary.first_token_seconds * 1000, 3),
            attempts=summary.attempts,
            fell_back=summary.fell_back,
            steps=summary.steps,
            tool_calls=len(summary.tool_calls),
        )
    return fields
