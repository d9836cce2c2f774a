"""Fixtures of the browser tests: `lean-chat serve` with its demo page, and a Chromium page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support.browser import chromium_page
from tests.support.server_process import ServerProcess


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`python -m lean_chat serve` on a free port with its demo page, SQLite history, no keys (the mock answers)."""
    with ServerProcess(str(tmp_path / "chat.sqlite3"), args=()) as server:
        yield server.url


@pytest.fixture
def page() -> Iterator[Page]:
    """A Chromium page; page and console errors fail the test."""
    problems: list[str] = []
    with chromium_page(problems) as found:
        yield found
    assert problems == []
