"""Tool calls in the metrics (by registered name and outcome, durations, steps per turn) and in the JSON log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from lean_chat import create_app
from lean_chat.server.log_format import JSONFormatter
from tests.support.apps import in_process, turn
from tests.support.scrape import parse_samples, value
from tests.support.tools import add, explode, tool_body

pytestmark = pytest.mark.anyio

TOOLS: list[Callable[..., Any]] = [add, explode]


async def test_tool_calls_are_counted_by_registered_name_and_outcome_and_steps_observed() -> None:
    calls = [
        {"name": "add", "args": {"a": 1, "b": 2}},
        {"name": "add", "args": {"a": "x"}},
        {"name": "explode", "args": {"reason": "r"}},
        {"name": "user-chosen-name-7f3a", "args": {}},
    ]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter([]))
    logger = logging.getLogger("lean_chat")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async with in_process(create_app(sqlite_path="", tools=TOOLS, metrics=True, log_format="json")) as http:
            await turn(http, tool_body("m", "x", calls))
            await turn(http, {"userId": "m2", "messages": [{"role": "user", "content": "plain"}]})
            text = (await http.get("/metrics")).text
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    samples = parse_samples(text)
    assert value(samples, "lean_chat_tool_calls_total", tool="add", outcome="ok") == 1
    assert value(samples, "lean_chat_tool_calls_total", tool="add", outcome="invalid_arguments") == 1
    assert value(samples, "lean_chat_tool_calls_total", tool="explode", outcome="tool_error") == 1
    assert value(samples, "lean_chat_tool_calls_total", tool="(unknown)", outcome="unknown_tool") == 1
    assert "user-chosen-name" not in text  # labels carry registered names only
    assert value(samples, "lean_chat_tool_duration_seconds_count", tool="add") == 1
    assert value(samples, "lean_chat_tool_duration_seconds_count", tool="explode") == 1
    assert value(samples, "lean_chat_turn_steps_count", provider="mock") == 2
    assert value(samples, "lean_chat_turn_steps_sum", provider="mock") == 3  # two steps, then one
    lines = [json.loads(line) for line in out.getvalue().splitlines() if '"path":"/chat/stream"' in line]
    assert [(line["steps"], line["tool_calls"]) for line in lines] == [(2, 4), (1, 0)]
