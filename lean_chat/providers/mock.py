"""The mock provider: a deterministic reply streamed offline, for building and testing UIs (tools and reasoning too)."""

from __future__ import annotations

import asyncio
import random
import re
import zlib
from collections.abc import AsyncGenerator, Sequence

import msgspec

from .base import MockKnobs, StreamCall
from .events import ProviderEvent, ReasoningDelta, StepEnd, ToolCall
from .parts import Part, ProviderState, ReasoningPart, TextPart, ToolCallPart, ToolResultPart

__all__ = ["MockProvider", "build_reply", "split_tokens"]

GREETING = "Hello there."
BURST_BATCH = 256
REASONING_CHUNK = 8  # tokens of reasoning per delta

_TOKEN_RE = re.compile(r"[ \n\t]|[^ \n\t]+")

# Our own filler: short notes on streaming, picked in a fixed order that depends on the prompt.
_FILLER = (
    "Tokens arrive one frame at a time, so the page can paint words as soon as they exist.",
    "A stream ends with one done event that repeats the whole reply, so a client can check what it drew.",
    "When the network stutters, frames wait in the socket; nothing is reordered and nothing is dropped.",
    "This text is generated locally and costs nothing, which makes it a good fit for layout and scroll tests.",
    "Pass a real model name and an API key to hear from an actual provider instead of this stand-in.",
    "Long replies are useful for checking auto-scroll, copy buttons and the stop button under load.",
    "Each request with the same input yields the same words and the same token boundaries, every time.",
    "Spaces, tabs and line breaks travel as tokens of their own, just like the words between them.",
)


_INTRO = "This is lean_chat's offline mock provider, streaming a reply of a chosen length."
_BREAK = "\n\n"  # between the reply's paragraphs


def reply_pieces(last_user_text: str, model_label: str, knobs: MockKnobs) -> list[str]:
    """The mock's reply for a prompt as the pieces it is joined from: the head, then the same few sentences and
    paragraph breaks (shared strings: an open stream keeps only its head and this list, not the reply's text)."""
    prompt = last_user_text.strip() or GREETING
    target = knobs.target_chars
    head = f"Mock reply ({model_label}): {prompt}" if knobs.include_prefix else prompt
    pieces = [head, _BREAK, _INTRO]
    size = len(head) + len(_INTRO) + 2
    step = zlib.crc32(prompt.encode("utf-8", "surrogatepass"))
    while size < target:
        step = (step * 1103515245 + 12345) & 0x7FFFFFFF
        sentence = _FILLER[step % len(_FILLER)]
        pieces += (_BREAK, sentence)
        size += len(sentence) + 2
    return pieces


def build_reply(last_user_text: str, model_label: str, knobs: MockKnobs) -> str:
    """The mock's full reply text for a prompt; the same input always gives the same text."""
    return "".join(reply_pieces(last_user_text, model_label, knobs))


def split_tokens(text: str) -> list[str]:
    """The mock's tokens: every space, newline and tab alone; runs of anything else together."""
    return _TOKEN_RE.findall(text)


class MockProvider:
    """Streams `build_reply` token by token, paced by `tokenDelayMs` and `jitterMs`."""

    name = "mock"

    def stream(self, call: StreamCall) -> AsyncGenerator[list[str] | ProviderEvent, None]:
        """The reply's tokens in batches: one per pause, or large batches when there is no pause."""
        knobs = call.mock
        last_user = next((m.content for m in reversed(call.messages) if m.role == "user"), "")
        pieces = reply_pieces(last_user, call.asked or "mock", knobs)
        if knobs.reasoning or knobs.tool_calls:
            return _step(call, "".join(pieces))
        delay_ms, jitter_ms = knobs.token_delay_ms, knobs.jitter_ms
        if delay_ms == 0 and jitter_ms == 0:
            return _burst("".join(pieces))
        return _paced(pieces, delay_ms, jitter_ms)


def _results_said(call: StreamCall) -> str:
    """One line per tool result of the last step (in the context's last message), as the next step's text opens."""
    last = call.messages[-1] if len(call.messages) else None
    if last is None or last.parts is None:
        return ""
    lines = []
    for part in last.parts:
        if isinstance(part, ToolResultPart):
            if part.isError:
                lines.append(f"Tool {part.name} failed: {(part.error or {}).get('code', 'error')}.")
            else:
                lines.append(f"Tool {part.name} returned {msgspec.json.encode(part.output).decode()}.")
    return "\n".join(lines) + "\n\n" if lines else ""


async def _step(call: StreamCall, reply: str) -> AsyncGenerator[list[str] | ProviderEvent, None]:
    """One step of a mock tool turn: reasoning first (step 0), then the tool calls (step 0), else the text."""
    knobs = call.mock
    delay = knobs.token_delay_ms / 1000.0
    parts: list[Part] = []
    if call.step == 0 and knobs.reasoning:
        tokens = _TOKEN_RE.findall(knobs.reasoning)
        for start in range(0, len(tokens), REASONING_CHUNK):
            if delay:
                await asyncio.sleep(delay)
            yield ReasoningDelta("".join(tokens[start : start + REASONING_CHUNK]))
        signature = f"mock-{zlib.crc32(knobs.reasoning.encode('utf-8', 'surrogatepass')):08x}"
        state = ProviderState("mock", call.model, {"signature": signature})
        parts.append(ReasoningPart(knobs.reasoning, state))
    if call.step == 0 and knobs.tool_calls:
        for index, mock_call in enumerate(knobs.tool_calls):
            if delay:
                await asyncio.sleep(delay)
            args_json = msgspec.json.encode(mock_call.args).decode()
            yield ToolCall(f"call_{index}", mock_call.name, args_json)
            parts.append(ToolCallPart(f"call_{index}", mock_call.name, mock_call.args))
        yield StepEnd("tool-calls", tuple(parts))
        return
    text = _results_said(call) + reply
    paced = knobs.token_delay_ms or knobs.jitter_ms
    async for batch in _paced([text], knobs.token_delay_ms, knobs.jitter_ms) if paced else _burst(text):
        yield batch
    yield StepEnd("stop", (*parts, TextPart(text)))


async def _burst(text: str) -> AsyncGenerator[list[str], None]:
    """All tokens as fast as the client takes them, in large batches, yielding the loop between."""
    tokens = _TOKEN_RE.findall(text)
    for start in range(0, len(tokens), BURST_BATCH):
        yield tokens[start : start + BURST_BATCH]
        await asyncio.sleep(0)


def _token_end(text: str, position: int) -> int:
    """Where the token starting at `position` ends."""
    found = _TOKEN_RE.match(text, position)
    assert found is not None  # the pattern matches any character
    return found.end()


def _wake(waiter: asyncio.Future[None]) -> None:
    """End a pause (unless its wait was cancelled meanwhile)."""
    if not waiter.done():
        waiter.set_result(None)


async def _paced(pieces: Sequence[str], delay_ms: int, jitter_ms: int) -> AsyncGenerator[list[str], None]:
    """The tokens of the text joined from `pieces`, on a schedule kept against the clock: a late wake-up sends every
    token that is due at once."""
    loop = asyncio.get_running_loop()
    # A generator's state is 2.5 KB: made only when there is jitter, since thousands of streams may be open.
    rng = random.Random(zlib.crc32("".join(pieces)[:200].encode("utf-8", "surrogatepass"))) if jitter_ms else None
    due = loop.time()
    pending: list[str] = []
    # One token matched at a time (the pattern matches at every position): a `finditer` scanner held for the whole
    # reply costs 1.6 KB per open stream; and the pause is a future with a timer, as `asyncio.sleep` makes one,
    # without its coroutine frame. Thousands of streams may be open. No token spans two pieces: the paragraph
    # breaks between them are whitespace, tokens of their own.
    for text in pieces:
        position, end = 0, len(text)
        while position < end:
            start, position = position, _token_end(text, position)
            due += (delay_ms + (rng.randint(0, jitter_ms) if rng is not None else 0)) / 1000.0
            wait = due - loop.time()
            if wait > 0:
                if pending:
                    yield pending
                    pending = []
                waiter = loop.create_future()
                timer = loop.call_later(wait, _wake, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
            pending.append(text[start:position])
    if pending:
        yield pending
