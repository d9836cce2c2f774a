"""Retrying an upstream stream before its first token: which failures, and how long to wait."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .base import ProviderError, StreamCall

__all__ = ["RETRY_STATUSES", "RetryPolicy", "UpstreamError", "retry_after_seconds", "retry_wait"]

logger = logging.getLogger("lean_chat.providers")

# Request timeout, conflict, rate limit, server errors, and Anthropic's "overloaded".
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class UpstreamError(ProviderError):
    """A provider failure, with how long the upstream asked us to wait before trying again (if it said).

    `status` and `error_type` are the upstream's HTTP status and error type, when it answered with one.
    """

    def __init__(
        self,
        detail: str,
        *,
        code: str = "provider_error",
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(detail, code=code, retryable=retryable)
        self.retry_after = retry_after
        self.status = status
        self.error_type = error_type
        # For the metrics: the HTTP status, httpx's error class, or a word of ours (never the upstream's text).
        self.failure_kind = str(status) if status is not None else "provider_error"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait an answer asks for: `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry, and the backoff: exponential from `base_delay_ms` up to `max_delay_ms`."""

    max_retries: int = 2
    base_delay_ms: int = 500
    max_delay_ms: int = 8000
    retry_after_cap_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt + 1`: the upstream's wish (capped), else jittered backoff."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_seconds)
        ceiling = min(self.max_delay_ms, self.base_delay_ms * (1 << min(attempt, 30))) / 1000.0
        # "Equal jitter": at least half the backoff, so retries never bunch up at zero.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_wait(
    provider: str, policy: RetryPolicy, exc: ProviderError, tries: int, started: bool, call: StreamCall
) -> float | None:
    """After a failed attempt: seconds to wait before the next one, or None when it must not be retried.

    A stream that yielded a token is never retried; the failure's kind is noted on `call` (for the metrics).
    """
    call.failures += (getattr(exc, "failure_kind", exc.code),)
    if started or not exc.retryable or tries >= policy.max_retries:
        return None
    wait = policy.delay(tries, exc.retry_after if isinstance(exc, UpstreamError) else None)
    # %r: the detail quotes the upstream's own words, which may echo the request (a model name, say).
    logger.warning("%s: %r; retry %d of %d in %.2f s", provider, exc.detail, tries + 1, policy.max_retries, wait)
    return wait
