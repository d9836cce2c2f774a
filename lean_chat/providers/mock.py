"""The mock provider: a deterministic reply streamed offline, for building and testing UIs (tools and reasoning too)."""

from __future__ import annotations

import asyncio
import random
import re
import zlib
from collections.abc import AsyncGenerator, Sequence

import msgspec

from .base import MockKnobs, ProviderStream, StreamCall
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

    def stream(self, call: StreamCall) -> ProviderStream:
        """The reply's tokens in batches: one per pause, or large batches when there is no pause."""
        knobs = call.mock
        last_user = next((m.content for m in reversed(call.messages) if m.role == "user"), "")
        pieces = reply_pieces(last_user, call.asked or "mock", knobs)
        if knobs.reasoning or knobs.tool_calls:
            return _step(call, "".join(pieces))
        delay_ms, jitter_ms = knobs.token_delay_ms, knobs.jitter_ms
        if delay_ms == 0 and jitter_ms == 0:
            return _burst("".join(pieces))
        return _Paced(pieces, delay_ms, jitter_ms)


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
    batches = _Paced([text], knobs.token_delay_ms, knobs.jitter_ms) if paced else _burst(text)
    try:
        async for batch in batches:
            yield batch
    finally:
        await batches.aclose()
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


class _Paced:
    """The tokens of the text joined from `pieces`, on a schedule kept against the clock: a late wake-up sends every
    token that is due at once.

    An async iterator of its own rather than an async generator: thousands of streams may be open, and each
    generator keeps a frame (0.35 KB) and an entry in the loop's registry of generators (0.2 KB). Each pause is a
    future that a timer completes with the batch due then. One token is matched at a time (the pattern matches at
    every position); no token spans two pieces, since the paragraph breaks between them are tokens of their own.
    """

    __slots__ = ("_delay", "_due", "_jitter", "_loop", "_next_due", "_piece", "_pieces", "_position", "_rng", "_timer")

    def __init__(self, pieces: Sequence[str], delay_ms: int, jitter_ms: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._pieces = pieces
        self._piece = 0  # the piece being sent, and the position in it of the next token
        self._position = 0
        self._delay, self._jitter = delay_ms, jitter_ms
        # A generator's state is 2.5 KB: made only when there is jitter.
        seed = zlib.crc32("".join(pieces)[:200].encode("utf-8", "surrogatepass")) if jitter_ms else 0
        self._rng = random.Random(seed) if jitter_ms else None
        self._due = self._loop.time()  # when the last token sent was due
        self._next_due: float | None = None  # when the next token is due, once drawn (the jitter is drawn once)
        self._timer: asyncio.TimerHandle | None = None

    def __aiter__(self) -> _Paced:
        return self

    def __anext__(self) -> asyncio.Future[list[str]]:
        """The next batch: the tokens due now, else a future the timer completes when the next one is due."""
        batch = self._take_due([])
        future: asyncio.Future[list[str]] = self._loop.create_future()  # (made first: one per batch, as before)
        if batch:
            future.set_result(batch)
        elif self._next_due is None:  # nothing is left
            raise StopAsyncIteration
        else:
            self._timer = self._loop.call_at(self._next_due, self._ripe, future)
        return future

    def _take_due(self, batch: list[str]) -> list[str]:
        """Add to `batch` the tokens due by now (none left: `_next_due` stays None)."""
        pieces, now = self._pieces, self._loop.time()
        while self._piece < len(pieces):
            text, start = pieces[self._piece], self._position
            if start >= len(text):
                self._piece, self._position = self._piece + 1, 0
                continue
            if self._next_due is None:
                jitter = self._rng.randint(0, self._jitter) if self._rng is not None else 0
                self._next_due = self._due + (self._delay + jitter) / 1000.0
            if self._next_due > now:
                return batch
            self._due, self._next_due = self._next_due, None
            self._position = _token_end(text, start)
            batch.append(text[start : self._position])
        return batch

    def _ripe(self, future: asyncio.Future[list[str]]) -> None:
        """The next token is due: complete the pause with it and any others due (unless the wait was cancelled)."""
        self._timer = None
        if not future.done():
            assert self._next_due is not None  # a pause always waits for a drawn token
            self._due, self._next_due = self._next_due, None
            text, start = self._pieces[self._piece], self._position
            self._position = _token_end(text, start)
            future.set_result(self._take_due([text[start : self._position]]))

    async def aclose(self) -> None:
        """Stop: no timer is left behind."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._piece = len(self._pieces)
        self._next_due = None
