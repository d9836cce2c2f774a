"""The Redis hub closed moments after it opened (a start-up that fails, Ctrl-C at once) ends, never hangs.

redis-py swallows a cancel that lands while a pubsub connects; the stop listener then read on for ever and
`lean-chat serve` hung in its shutdown, deaf to SIGINT and SIGTERM.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lean_chat.config import Settings
from lean_chat.hub import StreamInfo, open_hub

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def _never_called(info: StreamInfo, content: str) -> None:
    raise AssertionError("no stream ran: nothing to save")


@pytest.mark.parametrize("turns", range(8))
async def test_the_redis_hub_closes_within_a_second_however_soon_after_opening(
    redis_options: dict[str, Any], turns: int
) -> None:
    hub = open_hub(Settings(**redis_options))
    await hub.open(_never_called)
    for _ in range(turns):  # the loop turns the background tasks get before the close: each lands elsewhere
        await asyncio.sleep(0)
    # Shielded: a cancel from the deadline would reach the stuck task and free it, as nothing does in a lifespan.
    await asyncio.wait_for(asyncio.shield(hub.close()), 1)
