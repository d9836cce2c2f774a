"""The `POST /chat/ui` body read into a UIAsk (http/ui_schema.py): what it keeps, and any JSON either read or
refused with FastAPI-shaped errors, never another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lean_chat.http.ui_schema import UIAsk, decode_ui_request
from lean_chat.refusals import BodyUnreadable, ValidationFailed


def body(**fields: Any) -> bytes:
    """A body with one user text message, and these fields over it."""
    found = {"id": "c", "messages": [{"id": "m", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}
    return json.dumps({**found, **fields}).encode()


def test_text_parts_are_the_content_and_options_are_kept() -> None:
    parts = [{"type": "step-start"}, {"type": "text", "text": "a"}, {"type": "reasoning", "text": "r"}]
    parts += [
        {"type": "tool-get_weather", "toolCallId": "t", "state": "output-available"},
        {"type": "text", "text": "b"},
    ]
    message = {"id": "m1", "role": "assistant", "parts": parts, "metadata": {"k": 1}}
    ask = decode_ui_request(body(messages=[message], model="gpt-4.1", mock={"x": 1}, trigger="regenerate-message"))
    assert isinstance(ask, UIAsk)
    assert ask.chat_id == "c" and ask.trigger == "regenerate-message" and ask.user_id is None
    (read,) = ask.messages
    assert (read.id, read.role, read.content, read.metadata) == ("m1", "assistant", "ab", {"k": 1})
    assert ask.options == {"model": "gpt-4.1", "mock": {"x": 1}}


def test_every_error_of_a_body_is_named_at_once() -> None:
    messages = [{"id": "", "role": "bot", "parts": [{"type": "file"}, "x"]}, 3]
    with pytest.raises(ValidationFailed) as refused:
        decode_ui_request(json.dumps({"messages": messages, "trigger": "resume-stream", "userId": 5}).encode())
    locs = {tuple(error["loc"]) for error in refused.value.detail}
    assert locs == {
        ("body", "id"),
        ("body", "userId"),
        ("body", "trigger"),
        ("body", "messages", 0, "id"),
        ("body", "messages", 0, "role"),
        ("body", "messages", 0, "parts", 0, "type"),
        ("body", "messages", 0, "parts", 1, "type"),
        ("body", "messages", 1),
    }


def test_a_long_unknown_part_type_is_named_cut_short() -> None:
    with pytest.raises(ValidationFailed) as refused:
        decode_ui_request(body(messages=[{"id": "m", "role": "user", "parts": [{"type": "x" * 5000}]}]))
    (error,) = refused.value.detail
    assert "'" + "x" * 64 + "…'" in error["msg"] and len(error["msg"]) < 300


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
parts = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "reasoning", "file", "tool-x", "step-start", "data-y", ""]) | json_values},
    optional={"text": st.text(max_size=20) | json_values},
)
messages = st.fixed_dictionaries(
    {"id": st.text(max_size=300) | json_values, "role": st.sampled_from(["user", "assistant", "x"]) | json_values},
    optional={"parts": st.lists(parts | json_values, max_size=3) | json_values, "metadata": json_values},
)
bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.text(max_size=300) | json_values,
            "messages": st.lists(messages | json_values, max_size=4) | json_values,
            "trigger": st.sampled_from(["submit-message", "regenerate-message"]) | json_values,
            "messageId": st.text(max_size=10) | json_values,
            "userId": st.text(max_size=10) | json_values,
        },
    )
    | json_values
)


@settings(max_examples=300, deadline=None)
@given(value=bodies)
def test_any_json_is_read_or_refused_with_a_detail(value: Any) -> None:
    try:
        ask = decode_ui_request(json.dumps(value).encode())
    except ValidationFailed as refused:
        assert refused.detail and all(error["msg"] and error["loc"][0] == "body" for error in refused.detail)
    else:
        assert ask.chat_id and all(m.role in ("system", "user", "assistant") for m in ask.messages)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b'"x"', b"\xff\xfe", b"[" * 5000 + b"]" * 5000])
def test_bodies_that_are_not_an_object_are_refused(raw: bytes) -> None:
    with pytest.raises((ValidationFailed, BodyUnreadable)):
        decode_ui_request(raw)
