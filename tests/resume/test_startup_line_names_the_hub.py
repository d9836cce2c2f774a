"""The start-up line names every backend in use: where live streams are kept (this process, or Redis) too.

It named the history store and metrics but not Redis, so a misconfigured Redis instance looked like any other.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from lean_chat.config import Settings
from lean_chat.hub import describe_hub
from tests.support.apps import in_process

pytestmark = pytest.mark.anyio


def _ready_line(caplog: pytest.LogCaptureFixture) -> str:
    """The one `lean_chat ready` line logged."""
    (ready,) = [r.getMessage() for r in caplog.records if "lean_chat ready" in r.getMessage()]
    return ready


@pytest.mark.redis
async def test_the_start_up_line_names_redis_when_live_streams_are_kept_there(
    redis_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lean_chat")
    async with in_process(sqlite_path="", **redis_options):
        pass
    where = f"127.0.0.1:6379/0 (keys {redis_options['redis_prefix']}*)"
    assert f"; history in memory; live streams in Redis at {where}; metrics " in _ready_line(caplog)


async def test_the_start_up_line_says_live_streams_stay_in_the_process_without_redis(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="lean_chat")
    async with in_process(sqlite_path=""):
        pass
    assert "; history in memory; live streams in this process; metrics " in _ready_line(caplog)


def test_the_redis_address_is_shown_without_its_password() -> None:
    settings = Settings(redis_url="redis://app:hunter2@cache.internal:6380/3", redis_prefix="chat:")
    assert describe_hub(settings) == "in Redis at cache.internal:6380/3 (keys chat:*)"
    unix = Settings(redis_url="unix:///run/redis.sock")
    assert describe_hub(unix) == "in Redis at /run/redis.sock (keys lean_chat:*)"
