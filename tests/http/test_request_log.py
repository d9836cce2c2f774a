"""The line per finished request: client text cut at its limit only after keys are redacted, so no key leaks."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from lean_chat.config import Settings
from lean_chat.http.request_log import _MAX_MODEL, _MAX_PATH
from lean_chat.server.log_format import JSONFormatter, configured_secrets
from tests.support.apps import in_process, stream_body

pytestmark = pytest.mark.anyio

# Upper case and digits only, so that the lower-case filler around them never makes a piece of one.
PROVIDER_KEY = "SK-PROVIDER-0123456789AB"
API_KEY = "LC7API9KEY4TOKEN8VALUE5Q"
SETTINGS: dict[str, Any] = {
    "sqlite_path": "",
    "openai_api_key": PROVIDER_KEY,
    "api_keys": [API_KEY],
    "log_format": "json",
}
AUTH = {"authorization": f"Bearer {API_KEY}"}


def _fragments(key: str, size: int = 8) -> set[str]:
    """Every piece of `size` characters of the key."""
    return {key[i : i + size] for i in range(len(key) - size + 1)}


def _texts(key: str, limit: int) -> Iterator[str]:
    """Client text with the key starting anywhere from well before the cut to just past it, ending there or not."""
    for start in range(limit - len(key) - 3, limit + 3):
        for tail in ("", "zz", "z" * 40):
            yield "x" * start + key + tail


@contextmanager
def _json_log_lines() -> Iterator[io.StringIO]:
    """lean_chat's log lines as `lean-chat serve --log-format json` writes them, with these settings' keys."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter(configured_secrets(Settings(**SETTINGS))))
    logger = logging.getLogger("lean_chat")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _leaks(log: str, key: str) -> list[str]:
    """The lines of the log holding a piece of the key."""
    pieces = _fragments(key)
    return [line for line in log.splitlines() if any(piece in line for piece in pieces)]


@pytest.mark.parametrize("key", [PROVIDER_KEY, API_KEY], ids=["provider_key", "api_key"])
async def test_model_name_around_its_cut_never_logs_a_piece_of_a_key(key: str) -> None:
    with _json_log_lines() as out:
        async with in_process(**SETTINGS) as http:
            for text in _texts(key, _MAX_MODEL - len("mock-")):
                body = stream_body("u", "hi", model="mock-" + text)
                assert (await http.post("/chat/stream", json=body, headers=AUTH)).status_code == 200
    log = out.getvalue()
    assert log.count('"path":"/chat/stream"') == 3 * (len(key) + 6)  # one line per request, each written
    assert _leaks(log, key) == []


@pytest.mark.parametrize("key", [PROVIDER_KEY, API_KEY], ids=["provider_key", "api_key"])
async def test_path_around_its_cut_never_logs_a_piece_of_a_key(key: str) -> None:
    with _json_log_lines() as out:
        async with in_process(**SETTINGS) as http:
            for text in _texts(key, _MAX_PATH - len("/chat/")):
                assert (await http.get("/chat/" + text, headers=AUTH)).status_code == 404
    log = out.getvalue()
    assert log.count('"status":404') == 3 * (len(key) + 6)
    assert _leaks(log, key) == []


@pytest.mark.parametrize("key", [PROVIDER_KEY, API_KEY], ids=["provider_key", "api_key"])
async def test_query_string_of_any_length_never_logs_a_piece_of_a_key(key: str) -> None:
    with _json_log_lines() as out:
        async with in_process(**SETTINGS) as http:
            for limit in (_MAX_MODEL, _MAX_PATH):
                # An id holds at most 256 characters, so the text goes in a parameter the endpoint ignores, with the
                # key at the same places of the query string as when it was `userId=` + text.
                for text in _texts(key, limit - len("u&note=")):
                    response = await http.get("/chat/history", params={"userId": "u", "note": text}, headers=AUTH)
                    assert response.status_code == 200
    log = out.getvalue()
    assert log.count('"path":"/chat/history"') == 2 * 3 * (len(key) + 6)
    assert _leaks(log, key) == []


async def test_a_redacted_path_is_still_cut_at_its_limit() -> None:
    path = "/" + "x" * 100 + API_KEY + "y" * 300
    with _json_log_lines() as out:
        async with in_process(**SETTINGS) as http:
            assert (await http.get(path, headers=AUTH)).status_code == 404
    (line,) = [json.loads(line) for line in out.getvalue().splitlines() if '"status":404' in line]
    assert line["path"] == ("/" + "x" * 100 + "[redacted]" + "y" * 300)[:_MAX_PATH] + "…"
