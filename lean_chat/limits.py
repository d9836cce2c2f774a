"""Limits on one request's size and on each user's concurrent streams."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .refusals import RETRY_AFTER_SECONDS, TooManyStreams, ValidationFailed
from .schema import ChatRequest

__all__ = ["RETRY_AFTER_SECONDS", "StreamSlots", "check_chat_request"]


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


class StreamSlots:
    """Counts each user's running streams in this process; past the limit a stream is refused with 429."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self.running: dict[str, int] = {}

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        """Hold one of the user's slots for the block, or raise TooManyStreams (429, with Retry-After)."""
        count = self.running.get(user_id, 0)
        if self.per_user > 0 and count >= self.per_user:
            raise TooManyStreams(self.per_user)
        self.running[user_id] = count + 1
        try:
            yield
        finally:
            left = self.running[user_id] - 1
            if left:
                self.running[user_id] = left
            else:
                del self.running[user_id]
