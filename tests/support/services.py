"""The services outside Python that some tests need, each named by a marker that `-m 'not <marker>'` leaves out.

A test that reaches a service must carry its marker. `tests/conftest.py` holds this two ways: at collection, a test
asking for one of `FIXTURES` without the marker stops the run; while running, `needs(marker)` (called where a
service is first reached: a database made, Redis pinged, Chromium or Node started) fails a test without it.
"""

from __future__ import annotations

import pytest

__all__ = ["FIXTURES", "MARKERS", "needs", "running", "unmarked"]

# Every service marker and what it stands for (pyproject.toml registers the same names).
MARKERS = {
    "postgres": "PostgreSQL 15 at 127.0.0.1:5432",
    "redis": "Redis 7 at 127.0.0.1:6379",
    "browser": "Chromium through Playwright",
    "node": "Node.js and the JS clients of tests/js and tests/ai_sdk",
}

# Fixtures that reach a service, and the marker a test asking for one must carry.
FIXTURES = {"postgres_url": "postgres", "redis_options": "redis", "page": "browser"}

# The test being run (set and cleared by tests/conftest.py); empty outside pytest, e.g. when compat/ runs alone.
running: list[pytest.Item] = []


def needs(marker: str) -> None:
    """Fail the running test unless it carries `marker` (a no-op outside a test)."""
    if not running:
        return
    item = running[-1]
    if item.get_closest_marker(marker) is None:
        pytest.fail(
            f"{item.nodeid} uses {MARKERS[marker]} but is not marked `{marker}`: mark it "
            f"(pytest.mark.{marker}, or pytest.param(..., marks=pytest.mark.{marker}))",
            pytrace=False,
        )


def unmarked(item: pytest.Item) -> list[str]:
    """The fixtures of `FIXTURES` that this test asks for without their marker."""
    fixtures: list[str] = getattr(item, "fixturenames", [])
    return [name for name, marker in FIXTURES.items() if name in fixtures and item.get_closest_marker(marker) is None]
