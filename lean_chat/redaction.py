"""Configured keys kept out of text: each stretch where one or more keys appear becomes one `[redacted]`."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["REDACTED", "redact"]

REDACTED = "[redacted]"


def redact(text: str, secrets: Sequence[str]) -> str:
    """The text with every occurrence of every secret replaced (overlapping ones as one), before any cut."""
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        if not secret or secret not in text:
            continue
        start = text.find(secret)
        while start >= 0:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    if not spans:
        return text
    # Replacing one key at a time would leave the rest of a second key that overlaps it: merge the spans first.
    spans.sort()
    parts: list[str] = []
    kept = 0
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start <= end:
            end = max(end, next_end)
            continue
        parts += (text[kept:start], REDACTED)
        kept, start, end = end, next_start, next_end
    parts += (text[kept:start], REDACTED, text[end:])
    return "".join(parts)
