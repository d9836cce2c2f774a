"""Limits on one request's size (each user's concurrent streams are counted by the stream hub, lean_chat/hub)."""

from __future__ import annotations

from ..refusals import RETRY_AFTER_SECONDS, ValidationFailed
from .schema import ChatRequest

__all__ = ["RETRY_AFTER_SECONDS", "check_chat_request", "check_contents"]


def check_chat_request(request: ChatRequest, max_messages: int, max_chars: int) -> None:
    """Raise ValidationFailed (422, naming the limit) when a chat has too many or too long messages."""
    check_contents([message.content for message in request.messages], max_messages, max_chars, "content")


def check_contents(contents: list[str], max_messages: int, max_chars: int, field: str) -> None:
    """Raise ValidationFailed (422, naming the limit) when there are too many messages, or too long ones (`field`:
    where a message's text is, for the error's `loc`)."""
    errors: list[dict[str, object]] = []
    count = len(contents)
    if max_messages > 0 and count > max_messages:
        errors.append(
            {
                "type": "too_long",
                "loc": ["body", "messages"],
                "msg": f"List should have at most {max_messages} items after validation, not {count}",
                "input": None,
                "ctx": {"field_type": "List", "max_length": max_messages, "actual_length": count},
            }
        )
    if max_chars > 0:
        for index, content in enumerate(contents):
            if len(content) > max_chars:
                errors.append(
                    {
                        "type": "string_too_long",
                        "loc": ["body", "messages", index, field],
                        "msg": f"String should have at most {max_chars} characters",
                        "input": None,
                        "ctx": {"max_length": max_chars},
                    }
                )
    if errors:
        raise ValidationFailed(errors)
