"""Limits on one request's size (each user's concurrent streams are counted by the stream hub, lean_chat/hub)."""

from __future__ import annotations

from ..refusals import RETRY_AFTER_SECONDS, ValidationFailed
from .schema import ChatRequest

__all__ = ["RETRY_AFTER_SECONDS", "check_chat_request"]


def check_chat_request(request: ChatRequest, max_messages: int, max_chars: int) -> None:
    """Raise ValidationFailed (422, naming the limit) when a chat has too many or too long messages."""
    errors: list[dict[str, object]] = []
    count = len(request.messages)
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
        for index, message in enumerate(request.messages):
            if len(message.content) > max_chars:
                errors.append(
                    {
                        "type": "string_too_long",
                        "loc": ["body", "messages", index, "content"],
                        "msg": f"String should have at most {max_chars} characters",
                        "input": None,
                        "ctx": {"max_length": max_chars},
                    }
                )
    if errors:
        raise ValidationFailed(errors)
