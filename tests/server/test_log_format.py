"""`LEAN_CHAT_LOG_FORMAT=json`: every log line one JSON object, one line per finished request, keys redacted."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from lean_chat.server.log_format import JSONFormatter
from tests.support.apps import stream_body
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer, first_tokens
from tests.support.server_process import ServerProcess
from tests.support.upstreams import API_KEY, FakeOpenAI, Reply

HOSTILE_MODEL = 'gpt-"x"\n{"level":"ERROR","message":"forged"}\u2028'


def test_a_record_is_one_json_line_with_keys_redacted() -> None:
    formatter = JSONFormatter(secrets=["sk-secret-1"])
    record = logging.LogRecord("lean_chat", logging.WARNING, __file__, 1, "bad %r with sk-secret-1", ("a\nb",), None)
    record.fields = {"model": 'm\n"x"', "status": 200, "note": "sk-secret-1"}
    line = formatter.format(record)
    assert "\n" not in line and "sk-secret-1" not in line
    data = json.loads(line)
    assert data["message"] == "bad 'a\\nb' with [redacted]"
    assert data["level"] == "WARNING" and data["logger"] == "lean_chat"
    assert (data["model"], data["status"], data["note"]) == ('m\n"x"', 200, "[redacted]")


def _access_lines(caplog: pytest.LogCaptureFixture, path: str) -> list[dict[str, Any]]:
    """The fields of the request log lines for `path` captured so far."""
    records = [r for r in caplog.records if r.name == "lean_chat.access"]
    return [fields for fields in (getattr(r, "fields", {}) for r in records) if fields.get("path") == path]


def test_resumable_reader_that_leaves_is_logged_client_gone(
    caplog: pytest.LogCaptureFixture, live_server: Callable[..., LiveServer]
) -> None:
    # A resumable POST's reader that leaves early ends its request while the producer goes on: its line tells
    # what the reader saw (client_gone, the tokens so far), as a plain stream's line does.
    caplog.set_level(logging.INFO, logger="lean_chat.access")
    server = live_server(create_app(sqlite_path="", log_format="json"))
    body = stream_body("leaver", "hello", tokenDelayMs=20, targetChars=4000)
    body["params"]["resume"] = True
    first_tokens(server.url, body, tokens=2)
    deadline = time.monotonic() + 10
    while not _access_lines(caplog, "/chat/stream") and time.monotonic() < deadline:
        time.sleep(0.01)
    (line,) = _access_lines(caplog, "/chat/stream")
    assert (line["status"], line["provider"], line["model"], line["outcome"]) == (200, "mock", "gpt-4.1", "client_gone")
    assert line["code"] is None and line["output_tokens"] >= 1 and line["first_token_ms"] is not None


def test_serve_writes_json_lines(tmp_path: Path, live_server: Callable[..., LiveServer]) -> None:
    fake = FakeOpenAI()
    fake.url = live_server(fake).url
    fake.queue(Reply(status=429, headers={"retry-after": "0"}), Reply(tokens=["Hi", " there"], input_tokens=7))
    env = {**fake.env(), "LEAN_CHAT_OPENAI_RETRY_BASE_DELAY_MS": "1", "LEAN_CHAT_API_KEYS": "sk-api-key-77"}
    served = ServerProcess("", None, env, None, args=("--log-format", "json"), cwd=tmp_path)
    try:
        served.wait_ready()
        headers = {"authorization": "Bearer sk-api-key-77", "x-request-id": "trace-1"}
        with httpx.Client(base_url=served.url, timeout=10, headers=headers) as http:
            first = http.post("/chat/stream", json=stream_body("u", "hello", model="gpt-4.1"))
            assert check_grammar(parse_frames(first.content)).event == "done"
            fake.queue(Reply(tokens=["ok"]))
            second = http.post("/chat/stream", json=stream_body("u", "again", model=HOSTILE_MODEL))
            assert check_grammar(parse_frames(second.content)).event == "done"
            fake.queue(Reply(tokens=["Hi", " again", "!"], input_tokens=5))
            resumable = stream_body("u", "once more", model="gpt-4.1")
            resumable["params"]["resume"] = True
            third = http.post("/chat/stream", json=resumable, headers={"x-request-id": "trace-3"})
            assert check_grammar(parse_frames(third.content)).event == "done"
            assert http.get("/chat/history", params={"userId": "u"}, headers={"x-request-id": "bad id"}).is_success
        assert served.interrupt() == 0
    finally:
        served.stop()
    lines = [json.loads(line) for line in served.lines]  # every line is JSON
    for secret in (API_KEY, "sk-api-key-77"):
        assert secret not in served.log
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any("lean_chat ready" in line["message"] for line in lines)
    retry = next(line for line in lines if line["logger"] == "lean_chat.providers")
    assert retry["level"] == "WARNING" and "HTTP 429" in retry["message"]
    streams = [line for line in lines if line["logger"] == "lean_chat.access" and line["path"] == "/chat/stream"]
    assert len(streams) == 3
    first_line, second_line, resumable_line = streams
    assert first_line["message"] == "POST /chat/stream 200"
    assert {key: first_line[key] for key in ("method", "status", "request_id", "provider", "model", "outcome")} == {
        "method": "POST",
        "status": 200,
        "request_id": "trace-1",
        "provider": "openai",
        "model": "gpt-4.1",
        "outcome": "done",
    }
    assert (first_line["output_tokens"], first_line["input_tokens"], first_line["attempts"]) == (2, 7, 2)
    assert 0 < first_line["first_token_ms"] <= first_line["duration_ms"]
    assert second_line["model"] == HOSTILE_MODEL.strip()  # escaped in its line, back whole when parsed
    # The resumable POST's line once had none of the stream's keys (its reader follows a producer of its own).
    assert resumable_line.keys() == first_line.keys()
    assert {key: resumable_line[key] for key in ("request_id", "provider", "model", "outcome", "code")} == {
        "request_id": "trace-3",
        "provider": "openai",
        "model": "gpt-4.1",
        "outcome": "done",
        "code": None,
    }
    assert (resumable_line["output_tokens"], resumable_line["input_tokens"], resumable_line["attempts"]) == (3, 5, 1)
    assert 0 < resumable_line["first_token_ms"] <= resumable_line["duration_ms"]
    (history,) = [line for line in lines if line["logger"] == "lean_chat.access" and line["path"] == "/chat/history"]
    assert history["status"] == 200 and history["request_id"] != "bad id" and "provider" not in history


def test_two_overlapping_keys_leave_no_piece_of_either() -> None:
    # Replaced one after the other, the first key took the shared middle and left the second's tail in the line.
    first, second = "KEYONE-ABCDEFGH-SHARED99", "SHARED99-KEYTWO-QRSTUVWX"
    formatter = JSONFormatter(secrets=[first, second])
    text = "x KEYONE-ABCDEFGH-SHARED99-KEYTWO-QRSTUVWX y"
    record = logging.LogRecord("lean_chat", logging.INFO, __file__, 1, text, (), None)
    assert json.loads(formatter.format(record))["message"] == "x [redacted] y"


def test_text_lines_carry_no_piece_of_a_key_sent_in_a_path_or_query(tmp_path: Path) -> None:
    # The text format (the default) had no redaction at all: uvicorn's access line wrote the path and query string
    # as sent, keys included.
    provider_key, api_key = "SK-PROVIDER-0123456789AB", "LC7API9KEY4TOKEN8VALUE5Q"
    env = {"OPENAI_API_KEY": provider_key, "LEAN_CHAT_API_KEYS": api_key}
    served = ServerProcess("", None, env, None, args=("--log-format", "text"), cwd=tmp_path)
    try:
        served.wait_ready()
        with httpx.Client(base_url=served.url, timeout=10, headers={"authorization": f"Bearer {api_key}"}) as http:
            for key in (provider_key, api_key):
                for start in (0, 100, 240, 250):
                    assert http.get("/chat/" + "x" * start + key).status_code == 404
                    query = {"userId": "u", "note": "x" * start + key}  # an id holds at most 256 characters
                    assert http.get("/chat/history", params=query).status_code == 200
        assert served.interrupt() == 0
    finally:
        served.stop()
    assert served.log.count('"GET /chat/') == 16  # uvicorn's access lines, each written
    for key in (provider_key, api_key):
        pieces = {key[i : i + 8] for i in range(len(key) - 7)}
        assert [line for line in served.lines if any(piece in line for piece in pieces)] == []
