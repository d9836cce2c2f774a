"""The request decoder: good bodies become Structs, bad ones a FastAPI-shaped `detail` list, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lean_chat.http.schema import (
    MAX_ID_CHARS,
    ChatMessage,
    ChatRequest,
    CreateConversationRequest,
    DeleteConversationRequest,
    UserOnlyRequest,
    decode_body,
)
from lean_chat.refusals import BodyUnreadable, ValidationFailed

KINDS = [ChatRequest, UserOnlyRequest, CreateConversationRequest, DeleteConversationRequest]


def detail_of(body: bytes, kind: type[Any]) -> list[dict[str, Any]]:
    """The `detail` list a bad body gives."""
    with pytest.raises(ValidationFailed) as caught:
        decode_body(body, kind)
    detail: list[dict[str, Any]] = caught.value.detail
    return detail


def test_good_chat_request() -> None:
    body = b'{"userId":"u","messages":[{"role":"user","content":"hi","meta":{"a":1}}],"params":{"model":"m"}}'
    request = decode_body(body, ChatRequest)
    assert request == ChatRequest("u", [ChatMessage("user", "hi", {"a": 1})], {"model": "m"})


def test_unknown_fields_are_ignored() -> None:
    request = decode_body(b'{"userId":"u","messages":[],"extra":[1,2],"params":null}', ChatRequest)
    assert request == ChatRequest("u", [], None)


def test_optional_fields_default_to_none() -> None:
    assert decode_body(b'{"userId":"u"}', CreateConversationRequest) == CreateConversationRequest("u", None, None)


def test_every_error_is_reported_in_field_order() -> None:
    detail = detail_of(b'{"messages":[{"role":"bot"}],"userId":""}', ChatRequest)
    assert [(d["type"], d["loc"]) for d in detail] == [
        ("string_too_short", ["body", "userId"]),
        ("literal_error", ["body", "messages", 0, "role"]),
        ("missing", ["body", "messages", 0, "content"]),
    ]


def test_json_error_names_the_position() -> None:
    assert detail_of(b'{"userId": 1', UserOnlyRequest) == [
        {
            "type": "json_invalid",
            "loc": ["body", 12],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": "Expecting ',' delimiter"},
        }
    ]


def test_invalid_utf8_is_unreadable_not_a_crash() -> None:
    with pytest.raises(BodyUnreadable):
        decode_body(b'{"userId":"\xff"}', UserOnlyRequest)


@pytest.mark.parametrize(
    "body",
    [
        b'{"userId":"u","messages":[{"role":"user","content":"\\ud800"}]}',
        b'{"userId":"u","messages":[],"params":{"x":NaN}}',
        b'{"userId":"u","messages":[],"params":{"x":1e400}}',
    ],
    ids=["lone surrogate", "NaN", "number out of range"],
)
def test_json_that_cannot_be_kept_is_refused(body: bytes) -> None:
    (only,) = detail_of(body, ChatRequest)
    assert only["type"] == "json_invalid" and only["loc"] == ["body", 0]
    assert only["ctx"]["error"].startswith("Unsupported JSON value")


def _check_outcome(body: bytes, kind: type[Any]) -> None:
    """A body either decodes, or fails with a non-empty, well-formed detail list (or as unreadable)."""
    try:
        decode_body(body, kind)
    except ValidationFailed as exc:
        assert exc.detail
        for entry in exc.detail:
            assert isinstance(entry["type"], str) and isinstance(entry["msg"], str)
            assert entry["loc"][0] == "body"
            json.dumps(entry)
    except BodyUnreadable:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "userId": json_values | st.text(max_size=4),
        "messages": st.lists(
            st.fixed_dictionaries(
                {}, optional={"role": json_values | st.sampled_from(["user", "bot"]), "content": json_values}
            )
            | json_values,
            max_size=3,
        ),
        "params": json_values,
        "conversationId": json_values,
        "title": json_values,
    },
)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=40), kind=st.sampled_from(KINDS))
def test_any_bytes_never_crash_the_decoder(body: bytes, kind: type[Any]) -> None:
    _check_outcome(body, kind)


@settings(max_examples=300, deadline=None)
@given(value=near_valid, kind=st.sampled_from(KINDS))
def test_near_valid_bodies_never_crash_the_decoder(value: dict[str, Any], kind: type[Any]) -> None:
    _check_outcome(json.dumps(value).encode(), kind)


def test_ids_longer_than_the_limit_are_refused_at_the_limit_kept() -> None:
    at_limit = "u" * MAX_ID_CHARS
    assert decode_body(json.dumps({"userId": at_limit}).encode(), UserOnlyRequest).userId == at_limit
    (only,) = detail_of(json.dumps({"userId": at_limit + "u"}).encode(), UserOnlyRequest)
    assert (only["type"], only["loc"], only["ctx"]) == ("string_too_long", ["body", "userId"], {"max_length": 256})
    body = {"userId": "u", "messages": [], "params": {"conversationId": at_limit + "c"}}
    (only,) = detail_of(json.dumps(body).encode(), ChatRequest)
    assert (only["type"], only["loc"]) == ("string_too_long", ["body", "params", "conversationId"])


def test_a_nul_in_any_string_is_refused_where_it_is() -> None:
    body = {
        "userId": "u",
        "messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": "a\x00b", "meta": {"k\x00": 1}}],
        "params": {"mock": {"deep": ["\x00"]}},
    }
    detail = detail_of(json.dumps(body).encode(), ChatRequest)
    assert [(d["type"], d["loc"]) for d in detail] == [
        ("value_error", ["body", "messages", 1, "content"]),
        ("value_error", ["body", "messages", 1, "meta", "k\x00"]),
        ("value_error", ["body", "params", "mock", "deep", 0]),
    ]
    assert detail[0]["msg"] == "Value error, the NUL character (U+0000) is not allowed"


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    body = json.dumps({"userId": "\\u0000", "messages": []}).encode()
    assert b"\\\\u0000" in body
    assert decode_body(body, ChatRequest).userId == "\\u0000"


def test_a_nul_deep_in_a_body_is_a_422_at_any_depth() -> None:
    # Near the stack's limit (wherever the caller's stack leaves it), msgspec still reads the body and the walk for
    # NULs, a few frames deeper, is the first to run out of stack: that too is a 422.
    for depth in range(600, 1000):
        nested = b"[" * depth + b'"\\u0000"' + b"]" * depth
        (only,) = detail_of(b'{"userId":"u","messages":[],"params":{"x":' + nested + b"}}", ChatRequest)
        assert only["type"] in ("value_error", "json_invalid"), depth
