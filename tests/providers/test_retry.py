"""The retry policy: which waits the upstream asks for, the cap, and jittered exponential backoff."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from lean_chat.providers.retry import RETRY_STATUSES, RetryPolicy, retry_after_seconds


def test_the_statuses_that_are_retried() -> None:
    assert RETRY_STATUSES == {408, 409, 429, 500, 502, 503, 504, 529}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
        ({"retry-after": "whenever"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(httpx.Headers(headers)) == expected


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    wait = retry_after_seconds(httpx.Headers({"retry-after": when}))
    assert wait is not None and 17 <= wait <= 20


def test_the_upstream_wait_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap_seconds=5.0)
    assert policy.delay(0, 120.0) == 5.0
    assert policy.delay(3, 0.5) == 0.5


def test_backoff_doubles_up_to_the_ceiling_with_jitter() -> None:
    policy = RetryPolicy(max_retries=5, base_delay_ms=500, max_delay_ms=8000)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (40, 8.0)]:
        waits = {policy.delay(attempt, None) for _ in range(50)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempt, waits)
        assert len(waits) > 1, "no jitter"
