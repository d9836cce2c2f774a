"""Log lines that no client string can forge: escaped tracebacks, and the stream's failure line over HTTP."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from lean_chat import Settings
from lean_chat.app import build_app
from lean_chat.log_escape import escaped_traceback
from lean_chat.store.base import StoredMessage
from lean_chat.store.memory import MemoryStore
from tests.support.apps import in_process, stream_body

FORGED = "CRITICAL:lean_chat:forged"
HOSTILE_ID = f"conv\n{FORGED}\r\n{FORGED}\u2028{FORGED}"


def lines(records: list[logging.LogRecord]) -> list[str]:
    """Every line the records give under a usual format (tracebacks included)."""
    formatter = logging.Formatter("%(levelname)s:%(name)s:%(message)s")
    return [line for record in records for line in formatter.format(record).splitlines()]


def test_escaped_traceback_writes_messages_as_repr() -> None:
    def fail() -> None:
        try:
            raise KeyError(HOSTILE_ID)
        except KeyError as exc:
            raise RuntimeError(f"store said {HOSTILE_ID}") from exc

    with pytest.raises(RuntimeError) as caught:
        fail()
    text = escaped_traceback(caught.value)
    assert not any(line.startswith(FORGED) for line in text.splitlines())
    assert text.count("Traceback (most recent call last):") == 2
    assert "builtins.KeyError: " in text and "builtins.RuntimeError: 'store said conv\\n" in text
    assert "in fail" in text and text.splitlines()[-1].startswith("builtins.RuntimeError: ")


def test_exception_whose_str_fails_is_still_logged() -> None:
    class Odd(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    assert escaped_traceback(Odd()).endswith("Odd: <unprintable>")


@pytest.mark.anyio
async def test_conversation_id_with_a_newline_forges_a_log_line(
    sqlite_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # User A streams into a conversation, deletes it, user B takes the id; A's stream then fails to save and logged
    # the raw id (`logger.exception`), so an id holding a newline wrote a line of its own choosing into the log.
    caplog.set_level(logging.DEBUG, logger="lean_chat")
    async with in_process(sqlite_path=sqlite_path) as http:
        body = stream_body("alice", "hello", conversation_id=HOSTILE_ID, tokenDelayMs=20, targetChars=300)
        streaming = asyncio.create_task(http.post("/chat/stream", json=body))
        await asyncio.sleep(0.3)
        await http.post("/chat/conversation/delete", json={"userId": "alice", "conversationId": HOSTILE_ID})
        taken = await http.post("/chat/conversation/create", json={"userId": "bob", "conversationId": HOSTILE_ID})
        assert taken.status_code == 200, taken.text
        response = await streaming
    assert response.status_code == 200
    assert not any(line.startswith(FORGED) for line in lines(caplog.records)), lines(caplog.records)
    # Every record that names the id names it escaped.
    assert all(HOSTILE_ID not in line for line in lines(caplog.records))


class BrokenStore(MemoryStore):
    """A memory store whose reply saves fail with an error that quotes the conversation id (as drivers do)."""

    async def save_reply(self, user_id: str, conversation_id: str, life: int, reply: StoredMessage) -> None:
        """Fail."""
        raise RuntimeError(f"cannot save into {conversation_id}")


@pytest.mark.anyio
@pytest.mark.parametrize("resume", [False, True], ids=["plain", "resumable"])
async def test_stream_failure_log_line_escapes_client_strings(caplog: pytest.LogCaptureFixture, resume: bool) -> None:
    # The resumable path (produced apart from its connection) logged a raw traceback until it shared the line.
    caplog.set_level(logging.DEBUG, logger="lean_chat")
    app = build_app(Settings(sqlite_path=""), store=BrokenStore())
    async with in_process(app) as http:
        body = stream_body(f"user\n{FORGED}", "hello", conversation_id=HOSTILE_ID)
        body["params"]["resume"] = resume
        response = await http.post("/chat/stream", json=body)
    tail = r"\nid: \d+\n\n\Z" if resume else r"\n\n\Z"  # a resumable frame ends with its id line
    assert re.search(r'"code":"internal_error"\}\}' + tail, response.text), response.text
    [record] = [r for r in caplog.records if r.getMessage().startswith("stream failed")]
    text = lines([record])
    assert not any(line.startswith(FORGED) for line in text), text
    assert repr(HOSTILE_ID) in text[0] and repr(f"user\n{FORGED}") in text[0]
    assert text[-1] == "builtins.RuntimeError: " + repr(f"cannot save into {HOSTILE_ID}")
