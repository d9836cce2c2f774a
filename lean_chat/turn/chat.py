"""One chat turn: resolve the conversation, merge history, pick the provider, fall back, persist."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, overload

from ..log_escape import log_failure
from ..providers.base import ContextMessage, Provider, ProviderError, StreamCall
from ..providers.mock import MockProvider
from ..providers.routing import provider_for_model
from ..store.base import ConversationGone, Store, StoredMessage, StoreUnavailable, TurnStart
from .outcomes import Done, Failed, Stopped, Unsaved
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
# Tokens kept as strings (~50 bytes each) before they join the reply's UTF-8 buffer.
_PENDING_TOKENS = 16


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
            made = self._made = [ContextMessage(m.role, m.content) for m in self._messages]
        return iter(made)

    @overload
    def __getitem__(self, index: int) -> ContextMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[ContextMessage]: ...

    def __getitem__(self, index: int | slice) -> ContextMessage | list[ContextMessage]:
        if isinstance(index, slice):
            return [ContextMessage(m.role, m.content) for m in self._messages[index]]
        message = self._messages[index]
        return ContextMessage(message.role, message.content)


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

    def __init__(self, service: ChatService, request: TurnRequest, start: TurnStart) -> None:
        self.service = service
        self.request = request
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
        self.call = StreamCall(self.model, ContextView(start.context), request.model, request.mock)
        # The reply so far: a growing UTF-8 buffer (about a byte per character; appends are linear in the reply's
        # length, where re-joining one string was quadratic) and the last few tokens, flushed into it together.
        self._reply = bytearray()
        self._pending: list[str] = []
        self.saved = False  # a reply was saved, or refused for good (see _save)
        self._kept = True  # False when the save was refused: the conversation is gone
        self._saving = asyncio.Lock()
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
        """True once a token was taken (and sent: the reply can no longer come from another provider)."""
        return bool(self._reply or self._pending)

    def _take(self, batch: list[str]) -> None:
        """Record a batch of tokens."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        pending = self._pending
        pending.extend(batch)
        if len(pending) > _PENDING_TOKENS:
            self._reply += "".join(pending).encode("utf-8", "surrogatepass")
            pending.clear()

    async def batches(self) -> AsyncGenerator[list[str], None]:
        """The reply's token batches, from the routed provider or the mock; raise TurnFailed on failure."""
        name = self.routed
        if name != "mock":
            provider = self.service.providers.get(name)
            if provider is None:
                if self.explicit or not self.service.mock_fallback:
                    raise TurnFailed(
                        f"Provider '{name}' is not configured (missing API key).", "provider_not_configured"
                    )
                if self.service.providers:  # some provider has a key, not this one: a fallback, not mock-only mode
                    logger.warning("%s has no API key for model %r; the mock answered instead", name, self.model)
            else:
                self.provider_name = name
                try:
                    async with aclosing(provider.stream(self.call)) as stream:
                        async for batch in stream:
                            if type(batch) is list and batch:  # events: the tool loop (being built) reads them
                                self._take(batch)
                                yield batch
                    return
                except ProviderError as exc:
                    if self.started or self.explicit or not self.service.mock_fallback:
                        raise TurnFailed(f"{name} failed for model '{self.model}': {exc.detail}", exc.code) from None
                    _log_fallback(name, self.model, exc)
                self.call.usage.input_tokens = self.call.usage.output_tokens = None
        self.provider_name = "mock"
        async with aclosing(self.service.mock.stream(self.call)) as stream:
            async for batch in stream:
                if type(batch) is list:
                    self._take(batch)
                    yield batch

    def usage(self, content: str) -> dict[str, int]:
        """The reply's token usage, as its `done` frame shows it."""
        reported = self.call.usage
        usage = {"tokens": estimated_tokens(content) if reported.output_tokens is None else reported.output_tokens}
        if reported.input_tokens is not None:
            usage["inputTokens"] = reported.input_tokens
        if reported.output_tokens is not None:
            usage["outputTokens"] = reported.output_tokens
        return usage

    async def finish(self) -> Done | Unsaved:
        """Save the complete reply: Done, or Unsaved when the conversation is gone or the store went away."""
        content = self.content
        try:
            if not await self._save(StoredMessage("assistant", content, self._meta(None))):
                return _GONE
        except StoreUnavailable:
            return _UNAVAILABLE
        return Done(content, f"{self.provider_name}:{self.model}", self.usage(content), self.conversation_id)

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
            try:
                await self._save(StoredMessage("assistant", self.content, self._meta(PARTIAL_META)))
            except StoreUnavailable:
                logger.warning("partial reply not saved: the history store is unavailable")
            except Exception as exc:  # the turn is ending already: its own failure is what the client sees
                log_failure(
                    logger, "partial reply not saved", exc, user=self.user_id, conversation=self.conversation_id
                )

    async def stop_reply(self) -> Stopped | Unsaved:
        """Save the reply so far as stopped by the user: Stopped, or Unsaved when the conversation is gone."""
        content = self.content
        if self.started and not self.saved:
            try:
                if not await self._save(StoredMessage("assistant", content, self._meta(STOPPED_META))):
                    return _GONE
            except StoreUnavailable:
                logger.warning("stopped reply not saved: the history store is unavailable")
        return Stopped(content, f"{self.provider_name}:{self.model}", self.usage(content), self.conversation_id)

    def _meta(self, flags: dict[str, Any] | None) -> dict[str, Any] | None:
        """The reply's `meta`: its id (when the request named one) and these flags (partial, stopped)."""
        reply_id = self.request.reply_id
        if reply_id is None:
            return dict(flags) if flags else None
        return {"id": reply_id, **(flags or {})}

    async def _save(self, reply: StoredMessage) -> bool:
        """Append the assistant reply to the conversation; False when it was deleted since the turn began.

        One reply is saved per turn: a later save (the partial one on the way out) waits for an earlier one in flight
        and is skipped once one was saved or refused for good. A save that failed leaves the reply unsaved, so that
        the partial reply is still saved on the way out.
        """
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
    ) -> None:
        self.store = store
        self.providers = providers
        self.default_model = default_model
        # When no model is named and the default provider fails before its first token, the mock answers.
        self.mock_fallback = mock_fallback
        self.max_context_chars = max_context_chars
        self.mock = MockProvider()

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
