"""The collector's freeze is one per process: apps count their holds, and only the last to stop undoes it."""

from __future__ import annotations

import gc

import pytest

from lean_chat import create_app
from lean_chat.server import gc_freeze
from tests.support.apps import in_process, stream_body, turn


@pytest.mark.anyio
async def test_two_apps_in_one_process_undo_each_others_freeze() -> None:
    assert gc_freeze.holders() == 0 and gc.get_freeze_count() == 0
    first, second = create_app(sqlite_path=""), create_app(sqlite_path="")
    async with in_process(first) as one:
        assert gc_freeze.holders() == 1 and gc.get_freeze_count() > 0
        async with in_process(second) as two:
            assert gc_freeze.holders() == 2
            await turn(two, stream_body("b", "hi"))
        # The second app stopped; the first still runs, and its start-up objects stay frozen.
        assert gc_freeze.holders() == 1 and gc.get_freeze_count() > 0
        await turn(one, stream_body("a", "hi"))
    assert gc_freeze.holders() == 0 and gc.get_freeze_count() == 0


def test_holds_nest_and_a_release_without_a_hold_is_refused() -> None:
    gc_freeze.hold()
    gc_freeze.hold()
    gc_freeze.release()
    assert gc.get_freeze_count() > 0
    gc_freeze.release()
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError):
        gc_freeze.release()
    assert gc_freeze.holders() == 0


def test_full_collections_are_rarer_while_held_and_the_thresholds_come_back() -> None:
    before = gc.get_threshold()
    gc_freeze.hold()
    gc_freeze.hold()
    held = gc.get_threshold()
    assert held[:2] == before[:2] and held[2] == max(before[2], gc_freeze.FULL_EVERY)
    gc_freeze.release()
    assert gc.get_threshold() == held  # another hold remains
    gc_freeze.release()
    assert gc.get_threshold() == before
