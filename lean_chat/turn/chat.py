"""One chat turn: resolve the conversation, merge history, pick the provider, fall back, run the tool loop, persist."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, overload

from ..log_escape import log_failure
from ..providers.base import ContextMessage, Provider, ProviderError, StreamCall, Usage
from ..providers.mock import MockProvider
from ..providers.parts import Part, TextPart, decode_parts, encode_parts
from ..providers.routing import provider_for_model
from ..store.base import ConversationGone, Store, StoredMessage, StoreUnavailable, TurnStart
from ..tools.registry import ToolRegistry
from ..tools.runner import CallLimits
from .events import StepFinished, TurnEvent
from .outcomes import Done, Failed, Stopped, Unsaved
from .step import StepParts
from .tool_run import ToolRun
from .turn_request import TurnRequest

__all__ = [
    "ChatService",
    "ContextView",
    "Turn",
    "TurnFailed",
    "estimated_tokens",
]

logger = logging.getLogger("lean_chat")

PARTIAL_META: dict[str, Any] = {"partial": True}
STOPPED_META: dict[str, Any] = {"partial": True, "stopped": True}
# A stream whose conversation was deleted (or cleared, or taken over) while it streamed.
_GONE = Unsaved(
    "The conversation was deleted while the reply streamed; the reply was not saved.", "conversation_deleted"
)
# A stream whose reply could not be saved because the store went away meanwhile.
_UNAVAILABLE = Unsaved("The history store became unavailable; the reply was not saved.", "store_unavailable")
# The `error` frame's message and code when a turn fails in a way nobody foresaw (the failure is logged).
_INTERNAL = ("Internal error while streaming the reply.", "internal_error")
# Tokens kept as strings (~50 bytes each) before they join the reply's UTF-8 buffer: a few, since every open stream
# keeps them (16 cost a paced stream 0.6 KB), and one encode per few batches is cheap next to a batch's write.
_PENDING_TOKENS = 4


class TurnFailed(Exception):
    """A turn cannot go on; `message` and `code` go into the `error` frame."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ContextView(Sequence[ContextMessage]):
    """The context as providers see it, each message made on access (the mock reads only the last user one), all of
    them once when it is iterated (a provider's request body walks it twice; a retry walks it again)."""

    __slots__ = ("_made", "_messages")

    def __init__(self, messages: list[StoredMessage]) -> None:
        self._messages = messages
        self._made: list[ContextMessage] | None = None

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[ContextMessage]:
        made = self._made
        if made is None:
            made = self._made = [_context_message(m) for m in self._messages]
        return iter(made)

    @overload
    def __getitem__(self, index: int) -> ContextMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[ContextMessage]: ...

    def __getitem__(self, index: int | slice) -> ContextMessage | list[ContextMessage]:
        if isinstance(index, slice):
            return [_context_message(m) for m in self._messages[index]]
        return _context_message(self._messages[index])


def _context_message(message: StoredMessage) -> ContextMessage:
    """A stored message as a provider sees it: an assistant message with `meta.parts` carries them."""
    meta = message.meta
    if meta is None or message.role != "assistant" or "parts" not in meta:
        return ContextMessage(message.role, message.content)
    return ContextMessage(message.role, message.content, decode_parts(meta["parts"]))


def _keepable(reply: StoredMessage) -> StoredMessage:
    """The reply as every store can keep it: a U+0000 from the provider (PostgreSQL's text cannot hold it) as U+FFFD.

    Clients cannot send U+0000 (schema.py refuses it), so only a provider's text can hold one.
    """
    if "\x00" not in reply.content:
        return reply
    return StoredMessage(reply.role, reply.content.replace("\x00", "\ufffd"), reply.meta)


def estimated_tokens(text: str) -> int:
    """A reply's output tokens when the provider reported none: about four characters each, at least one."""
    return max(1, (len(text) + 3) // 4)


def _log_fallback(provider: str, model: str, exc: ProviderError) -> None:
    """One warning line per fallback: provider, model, upstream status and error type (never the detail's text)."""
    logger.warning(
        "%s failed before its first token for model %r (status %s, error type %r); the mock answered instead"
        " (mock_fallback is on)",
        provider,
        model,
        getattr(exc, "status", None) or "none",
        getattr(exc, "error_type", None) or exc.code,
    )


class Turn:
    """One streamed reply: its tokens, the provider that made them, and saving the result."""

    # Declared: its 30 attributes are past what an instance's shared-key dict holds, and each turn (every open stream)
    # then carried a dict of its own (1.5 KB).
    __slots__ = (
        "_call_ids",
        "_evented",
        "_kept",
        "_later_calls",
        "_pending",
        "_reply",
        "_run",
        "_saving",
        "_step",
        "call",
        "conversation_id",
        "first_token_at",
        "life",
        "max_steps",
        "model",
        "parts",
        "provider_asked",
        "provider_name",
        "request",
        "requested_model",
        "routed",
        "saved",
        "service",
        "steps",
        "title",
        "tool_records",
        "tools",
        "user_id",
        "wants_events",
    )

    def __init__(self, service: ChatService, request: TurnRequest, start: TurnStart) -> None:
        self.service = service
        self.request = request.opened()
        self.user_id = request.user_id
        self.conversation_id = request.conversation_id
        self.title = start.title
        self.life = start.life
        self.requested_model = request.model
        self.model = request.model or service.default_model
        self.routed = provider_for_model(self.model)  # the provider the model routes to, configured or not
        # The provider meant to answer: the routed one, or the mock when that one has no key and no model was named.
        self.provider_asked = self.routed
        if self.routed != "mock" and self.routed not in service.providers and not self.explicit:
            self.provider_asked = "mock"
        self.provider_name = "mock"  # the provider that answers (known once the reply streams)
        # The tools this turn may use (params.tools narrows them), and how many steps it may take.
        self.tools = service.tools.allowed(request.tools) if service.tools is not None else {}
        self.max_steps = min(service.max_steps, request.max_steps or service.max_steps)
        self.call = StreamCall(
            self.model,
            ContextView(start.context),
            request.model,
            request.mock,
            tools=tuple(tool.spec for tool in self.tools.values()),
            reasoning=request.reasoning,
        )
        # Tuples, grown by a new one at each step (a plain turn has one step): every open stream keeps them, and an
        # empty tuple is shared where an empty list is not.
        self._later_calls: tuple[StreamCall, ...] = ()  # the calls of the steps after the first
        self.parts: tuple[Part, ...] = ()  # the finished steps' parts and their tool results, in order
        self.steps: tuple[StepFinished, ...] = ()
        self._step: StepParts | None = None  # the step streaming now
        self._run: ToolRun | None = None  # the tool calls of the last step, until all are answered
        self._call_ids: set[str] | None = None  # every tool call id of the turn (made at its first call)
        self._evented = False  # a provider event was taken (the reply can no longer come from another provider)
        self.tool_records: tuple[tuple[str, str, float], ...] = ()  # (tool label, outcome, seconds): for the metrics
        self.wants_events = bool(request.events)  # the edge reads events (else `events()` yields token batches only)
        # The reply so far: a growing UTF-8 buffer (about a byte per character; appends are linear in the reply's
        # length, where re-joining one string was quadratic) and the last few tokens, flushed into it together.
        self._reply = bytearray()
        self._pending: list[str] = []
        self.saved = False  # a reply was saved, or refused for good (see _save)
        self._kept = True  # False when the save was refused: the conversation is gone
        self._saving: asyncio.Lock | None = None  # made by the first save: most turns save once
        self.first_token_at: float | None = None  # time.perf_counter() at the first batch (for metrics, logs)

    @property
    def explicit(self) -> bool:
        """True when the client named a real model, which is then never silently replaced."""
        return bool(self.requested_model) and not self.requested_model.lower().startswith("mock")

    @property
    def content(self) -> str:
        """The reply text so far."""
        return self._reply.decode("utf-8", "surrogatepass") + "".join(self._pending)

    @property
    def started(self) -> bool:
        """True once a token or an event was taken (and sent: the reply can no longer come from another provider)."""
        return bool(self._reply or self._pending or self._evented)

    def reply_mark(self) -> int:
        """The reply's length in bytes, its pending tokens flushed first (taken at events: rare)."""
        if self._pending:
            self._flush()
        return len(self._reply)

    def call_id(self, proposed: str) -> str:
        """A tool call's id in this turn: the provider's own, unless missing or used already (then `call_N`)."""
        used = self._call_ids
        if used is None:
            used = self._call_ids = set()
        call_id, number = proposed, len(used)
        while not call_id or call_id in used:
            call_id = f"call_{number}"
            number += 1
        used.add(call_id)
        return call_id

    def _text_of(self, start: int, end: int) -> str:
        """The reply text between two marks."""
        return self._reply[start:end].decode("utf-8", "surrogatepass")

    def _flush(self) -> None:
        """Join the pending tokens to the reply's UTF-8 buffer."""
        self._reply += "".join(self._pending).encode("utf-8", "surrogatepass")
        self._pending.clear()

    def _provider(self) -> Provider:
        """The provider of the first step: the routed one, or the mock; raise TurnFailed when it cannot answer."""
        name = self.routed
        if name != "mock":
            provider = self.service.providers.get(name)
            if provider is not None:
                self.provider_name = name
                return provider
            if self.explicit or not self.service.mock_fallback:
                raise TurnFailed(f"Provider '{name}' is not configured (missing API key).", "provider_not_configured")
            if self.service.providers:  # some provider has a key, not this one: a fallback, not mock-only mode
                logger.warning("%s has no API key for model %r; the mock answered instead", name, self.model)
        self.provider_name = "mock"
        return self.service.mock

    async def events(self) -> AsyncGenerator[list[str] | TurnEvent, None]:
        """The turn's token batches and events, step by step (events.py); raise TurnFailed on failure.

        A step streams; when it made tool calls, they run (concurrently) and the next step streams with their
        results, until a step makes none or `max_steps` steps were taken. Events are yielded only when the request
        asked for some (`TurnRequest.events`): otherwise only token batches come, and the edge checks nothing.
        """
        wanted = self.wants_events
        list_type = list
        call = self.call
        provider = self._provider()
        index = 0
        while True:
            step = self._step = StepParts(index, self)
            while True:
                try:
                    # Closed as `aclosing` would, without its object and bound `__aexit__` kept meanwhile.
                    stream = provider.stream(call)
                    try:
                        async for item in stream:
                            if item.__class__ is list_type:  # the one check per batch (a local, no global lookup)
                                if item:
                                    # The batch taken here, not by a call: this runs once per relayed chunk.
                                    if self.first_token_at is None:
                                        self.first_token_at = time.perf_counter()
                                    pending = self._pending
                                    pending.extend(item)
                                    if len(pending) > _PENDING_TOKENS:
                                        self._flush()
                                    yield item
                            elif not isinstance(item, list):  # an event (rare)
                                self._evented = True
                                event = step.take(item)
                                if event is not None and wanted:
                                    yield event
                            del item  # not kept while the next one is awaited
                    finally:
                        await stream.aclose()
                    break
                except ProviderError as exc:
                    name = self.provider_name
                    if name == "mock" or self.started or self.explicit or index or not self.service.mock_fallback:
                        raise TurnFailed(f"{name} failed for model '{self.model}': {exc.detail}", exc.code) from None
                    _log_fallback(name, self.model, exc)
                    call.usage.input_tokens = call.usage.output_tokens = None
                    provider, self.provider_name = self.service.mock, "mock"
            finished = self._finish_step(step, call.usage)
            if step.calls:  # known before the step's frame goes out: a Stop from here on answers them `cancelled`
                self._run = ToolRun(
                    index,
                    step.calls,
                    self.tools,
                    self.service.call_limits,
                    self.service.max_tool_calls_per_step,
                    self.user_id,
                    self.conversation_id,
                )
            if wanted:
                yield finished
            run = self._run
            if run is None:
                return
            async with aclosing(run.run()) as results:
                async for result in results:
                    if wanted:
                        yield result
            self._settle_run(run)
            index += 1
            if index >= self.max_steps:
                return
            call = self._next_call(index)

    def _finish_step(self, step: StepParts, usage: Usage) -> StepFinished:
        """Keep a finished step's parts (none for a plain reply: its text is the content); its `step` event."""
        if step.evented or self.parts:
            self.parts += tuple(step.complete(self._text_of))
        self._step = None
        if step.end is not None:
            reason = step.end.finish_reason
            if step.end.usage is not None:
                usage.input_tokens, usage.output_tokens = step.end.usage.input_tokens, step.end.usage.output_tokens
        else:
            reason = "tool-calls" if step.calls else "stop"
        step_usage = self._usage_of([usage], None)
        if "outputTokens" not in step_usage:
            text_bytes = self.reply_mark() - step.first
            step_usage["tokens"] = max(1, (text_bytes + 3) // 4) if text_bytes else 0
        finished = StepFinished(step.index, reason, step_usage)
        self.steps += (finished,)
        return finished

    def _settle_run(self, run: ToolRun) -> None:
        """Keep the results of a step's tool calls (every call answered) and their records."""
        self.parts += tuple(run.answered())
        self.tool_records += tuple(run.records)
        self._run = None

    def _next_call(self, index: int) -> StreamCall:
        """The next step's call: the context, then this turn's assistant message so far with its parts."""
        first = self.call
        messages = [*first.messages, ContextMessage("assistant", self.content, self.parts)]
        call = StreamCall(
            self.model, messages, first.asked, first.mock, tools=first.tools, reasoning=first.reasoning, step=index
        )
        self._later_calls += (call,)
        return call

    @property
    def attempts(self) -> int:
        """Upstream requests made over every step (read by the metrics when the stream ends)."""
        return self.call.attempts + sum(call.attempts for call in self._later_calls)

    @property
    def failures(self) -> Sequence[str]:
        """The error type of each upstream request that failed, over every step."""
        if not self._later_calls:
            return self.call.failures
        return [failure for call in (self.call, *self._later_calls) for failure in call.failures]

    def parts_so_far(self) -> tuple[Part, ...]:
        """The parts to keep now: finished steps, the text and complete calls of a step cut short, every call answered.

        A step cut short keeps no reasoning; a call without a result (its step cut, or its tool still running) is
        answered `cancelled`.
        """
        step, run = self._step, self._run
        if step is not None:
            self._step = None
            self.parts += tuple(step.partial(self._text_of))
            if step.calls:
                run = ToolRun(step.index, step.calls, self.tools, self.service.call_limits, 0, "", "")
        if run is not None:
            self._settle_run(run)
        return self.parts

    @property
    def rich(self) -> bool:
        """True when the turn had reasoning or tool calls: its parts are then kept in `meta.parts`."""
        return any(type(part) is not TextPart for part in self.parts)

    def _meta(self, base: dict[str, Any] | None) -> dict[str, Any] | None:
        """The reply's meta: its id (when the request named one, `meta.id`), `base` (partial, stopped), and the parts
        when the turn had reasoning or tool calls."""
        reply_id = self.request.reply_id
        if not self.rich and reply_id is None:
            return base
        meta: dict[str, Any] = {"id": reply_id} if reply_id is not None else {}
        meta.update(base or {})
        if self.rich:
            meta["parts"] = encode_parts(self.parts)
        return meta or None

    @staticmethod
    def _usage_of(usages: Sequence[Usage], content: str | None) -> dict[str, int]:
        """Usage as `done` and `step` frames show it: reported counts summed, else an estimate from `content`."""
        inputs = [u.input_tokens for u in usages if u.input_tokens is not None]
        outputs = [u.output_tokens for u in usages if u.output_tokens is not None]
        if outputs:
            usage = {"tokens": sum(outputs)}
        else:
            usage = {"tokens": estimated_tokens(content) if content is not None else 0}
        if inputs:
            usage["inputTokens"] = sum(inputs)
        if outputs:
            usage["outputTokens"] = sum(outputs)
        return usage

    def reported_usage(self) -> tuple[int | None, int | None]:
        """(input, output) tokens the providers reported over every step; None where none reported any."""
        usages = self._step_usages()
        inputs = [u.input_tokens for u in usages if u.input_tokens is not None]
        outputs = [u.output_tokens for u in usages if u.output_tokens is not None]
        return (sum(inputs) if inputs else None), (sum(outputs) if outputs else None)

    def usage(self, content: str) -> dict[str, int]:
        """The reply's token usage, as its `done` frame shows it (every step's)."""
        return self._usage_of(self._step_usages(), content)

    def _step_usages(self) -> list[Usage]:
        """Every step's usage, in order."""
        return [self.call.usage, *(call.usage for call in self._later_calls)]

    def _outcome_fields(
        self, content: str
    ) -> tuple[str, str, dict[str, int], str, tuple[Part, ...], tuple[StepFinished, ...]]:
        """The fields of the `Done` (or `Stopped`) of a reply that ended with this content: parts and steps too."""
        provider = f"{self.provider_name}:{self.model}"
        parts = self.parts if self.parts else (TextPart(content),) if content else ()
        return content, provider, self.usage(content), self.conversation_id, parts, tuple(self.steps)

    async def finish(self) -> Done | Unsaved:
        """Save the complete reply: Done, or Unsaved when the conversation is gone or the store went away."""
        content = self.content
        try:
            if not await self._save(StoredMessage("assistant", content, self._meta(None))):
                return _GONE
        except StoreUnavailable:
            return _UNAVAILABLE
        return Done(*self._outcome_fields(content))

    def failure(self, exc: Exception) -> TurnFailed:
        """What ends the turn after `exc`: a TurnFailed as it is; anything else logged, and an internal error."""
        if isinstance(exc, TurnFailed):
            return exc
        log_failure(logger, "stream failed", exc, user=self.user_id, conversation=self.conversation_id)
        return TurnFailed(*_INTERNAL)

    async def fail(self, failed: TurnFailed) -> Failed:
        """Save the reply so far, marked partial; the failure as the turn's outcome."""
        await self.save_partial()
        return Failed(failed.message, failed.code)

    async def save_partial(self) -> None:
        """Save the reply so far, marked partial (nothing when no token was produced, or the conversation is gone)."""
        if self.started and not self.saved:
            self.parts_so_far()
            try:
                await self._save(StoredMessage("assistant", self.content, self._meta(dict(PARTIAL_META))))
            except StoreUnavailable:
                logger.warning("partial reply not saved: the history store is unavailable")
            except Exception as exc:  # the turn is ending already: its own failure is what the client sees
                log_failure(
                    logger, "partial reply not saved", exc, user=self.user_id, conversation=self.conversation_id
                )

    async def stop_reply(self) -> Stopped | Unsaved:
        """Save the reply so far as stopped by the user: Stopped, or Unsaved when the conversation is gone."""
        self.parts_so_far()
        content = self.content
        if self.started and not self.saved:
            try:
                if not await self._save(StoredMessage("assistant", content, self._meta(dict(STOPPED_META)))):
                    return _GONE
            except StoreUnavailable:
                logger.warning("stopped reply not saved: the history store is unavailable")
        return Stopped(*self._outcome_fields(content))

    async def _save(self, reply: StoredMessage) -> bool:
        """Append the assistant reply to the conversation; False when it was deleted since the turn began.

        One reply is saved per turn: a later save (the partial one on the way out) waits for an earlier one in flight
        and is skipped once one was saved or refused for good. A save that failed leaves the reply unsaved, so that
        the partial reply is still saved on the way out.
        """
        if self._saving is None:
            self._saving = asyncio.Lock()
        async with self._saving:
            if not self.saved:
                try:
                    await self.service.store.save_reply(self.user_id, self.conversation_id, self.life, _keepable(reply))
                except ConversationGone:
                    self._kept = False
                except asyncio.CancelledError:
                    # The write ran to its end before this (store writes run to the end), with an outcome unknown
                    # here: a second write could keep the reply twice.
                    self.saved = True
                    raise
                self.saved = True
            return self._kept


class ChatService:
    """The chat logic shared by every request: store, providers, defaults."""

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        default_model: str = "gpt-4.1",
        mock_fallback: bool = True,
        max_context_chars: int = 400_000,
        tools: ToolRegistry | None = None,
        max_steps: int = 5,
        max_tool_calls_per_step: int = 16,
        call_limits: CallLimits | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.default_model = default_model
        # When no model is named and the default provider fails before its first token, the mock answers.
        self.mock_fallback = mock_fallback
        self.max_context_chars = max_context_chars
        self.mock = MockProvider()
        self.tools = tools if tools is not None and len(tools) else None
        self.max_steps = max(1, max_steps)
        self.max_tool_calls_per_step = max_tool_calls_per_step
        self.call_limits = call_limits or CallLimits()

    async def save_interrupted(
        self, user_id: str, conversation_id: str, life: int, content: str, reply_id: str | None = None
    ) -> None:
        """Save a reply whose producer died, rebuilt from its kept frames, marked partial (not into a new life)."""
        meta = dict(PARTIAL_META) if reply_id is None else {"id": reply_id, **PARTIAL_META}
        reply = _keepable(StoredMessage("assistant", content, meta))
        try:
            await self.store.save_reply(user_id, conversation_id, life, reply)
        except ConversationGone:
            logger.info("interrupted reply not saved: its conversation was deleted")

    async def open_turn(self, request: TurnRequest) -> Turn:
        """Merge the conversation's history and save the new user messages; raise ConversationForbidden."""
        start = await self.store.start_turn(
            request.user_id, request.conversation_id, request.messages, self.max_context_chars
        )
        return Turn(self, request, start)
