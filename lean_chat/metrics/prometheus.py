"""The Prometheus families, their hooks, and `GET /metrics` (one process, or several through files.py).

Names follow OpenTelemetry's GenAI semantic conventions where they have one (`gen_ai_client_*`, with the
attributes `gen_ai_provider_name`, `gen_ai_request_model`, `gen_ai_token_type` as labels); the rest are
`lean_chat_*`. Every label value is chosen by our code (labels.py): never a user id, a conversation id or
client text.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from ..bearer import bearer_token, is_key
from . import MULTIPROCESS_ENV, Metrics
from .files import MetricFiles
from .labels import ModelLabels, code_label, error_type_label, provider_label
from .pool import pool_state
from .store import watched

if TYPE_CHECKING:
    from ..config import Settings
    from ..store.base import Store
    from .summary import OpenStream, StreamSummary

__all__ = ["CONTENT_TYPE", "DURATION_BUCKETS", "TOKEN_BUCKETS", "PrometheusMetrics"]

# OpenTelemetry's advice for gen_ai.client.operation.duration (seconds) and gen_ai.client.token.usage.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
STEP_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20)
TOOL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Answers counted as refused (auth, size, time, rules, limits, shutdown), by status.
REFUSED = frozenset({400, 401, 403, 404, 405, 408, 409, 413, 422, 429, 503})
# How often each worker writes its upstream pool's state when several workers share the figures.
POOL_SAMPLE_SECONDS = 5.0

# The classic text format, which every Prometheus reads (our names need none of 1.0.0's escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_UNAUTHORIZED = msgspec.json.encode({"detail": "Missing or invalid API key for /metrics."})
_PROVIDER = "gen_ai_provider_name"
_MODEL = "gen_ai_request_model"


class PrometheusMetrics(Metrics):
    """The metric families of one app, in its own registry (or in the worker files when several processes run)."""

    enabled = True

    def __init__(self, settings: Settings, *, multiprocess_dir: str | None = None) -> None:
        self.api_keys = [key.encode("utf-8") for key in settings.api_keys if key]
        self.models = ModelLabels(settings.metrics_max_models, [settings.default_model, *settings.metrics_models])
        folder = multiprocess_dir if multiprocess_dir is not None else os.environ.get(MULTIPROCESS_ENV)
        self.files = MetricFiles(folder) if folder else None
        self.registry = CollectorRegistry(auto_describe=True)
        if self.files is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self._client: httpx.AsyncClient | None = None
        self._sampler: asyncio.Task[None] | None = None
        r = self.registry
        self.workers = Gauge(
            "lean_chat_workers", "Worker processes serving with metrics on.", registry=r, multiprocess_mode="livesum"
        )
        self.streams_open = Gauge(
            "lean_chat_streams_open",
            "Streams running now, by provider.",
            ["provider"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.streams_started = Counter(
            "lean_chat_streams_started", "Streams started, by provider and model.", ["provider", "model"], registry=r
        )
        self.streams_ended = Counter(
            "lean_chat_streams_ended",
            "Streams ended, by provider, model, outcome (done, error, client_gone, stopped, stalled_client) and "
            "the error frame's code.",
            ["provider", "model", "outcome", "code"],
            registry=r,
        )
        self.first_chunk = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from the request to the first token sent, by provider and model.",
            [_PROVIDER, _MODEL],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Time from the request to the stream's end, by provider and model.",
            [_PROVIDER, _MODEL],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per stream, by provider, model and type (input, output); the provider's counts where it gave "
            "them, else output estimated from the text (4 characters a token).",
            [_PROVIDER, _MODEL, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "lean_chat_upstream_attempts", "Upstream requests made, by provider.", ["provider"], registry=r
        )
        self.retries = Counter(
            "lean_chat_upstream_retries", "Upstream requests that were retries, by provider.", ["provider"], registry=r
        )
        self.failures = Counter(
            "lean_chat_upstream_failures",
            "Upstream requests that failed, by provider and error type (HTTP status, httpx error class, or "
            "truncated, reply_timeout, provider_error).",
            ["provider", "error_type"],
            registry=r,
        )
        self.fallbacks = Counter(
            "lean_chat_upstream_fallbacks",
            "Replies served by the mock because the provider asked for failed, by that provider.",
            ["provider"],
            registry=r,
        )
        self.pool_connections = Gauge(
            "lean_chat_upstream_pool_connections",
            "Upstream connections in the pool, by state (in_use, idle).",
            ["state"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "lean_chat_upstream_pool_waiting",
            "Upstream requests waiting for a pool connection.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.store_duration = Histogram(
            "lean_chat_store_operation_duration_seconds",
            "Store operation latency, by store kind and operation.",
            ["store", "operation"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.store_failures = Counter(
            "lean_chat_store_failures",
            "Store operations that raised, by store kind and operation.",
            ["store", "operation"],
            registry=r,
        )
        self.tool_calls = Counter(
            "lean_chat_tool_calls",
            "Tool calls, by tool (a registered name, or (unknown)) and outcome (ok, or the error result's code).",
            ["tool", "outcome"],
            registry=r,
        )
        self.tool_duration = Histogram(
            "lean_chat_tool_duration_seconds",
            "Time a tool call ran, by tool (calls refused before running are not observed).",
            ["tool"],
            buckets=TOOL_BUCKETS,
            registry=r,
        )
        self.steps = Histogram(
            "lean_chat_turn_steps",
            "Steps (upstream requests) per turn, by provider.",
            ["provider"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.refused = Counter(
            "lean_chat_requests_refused", "Requests refused before any work, by status.", ["status"], registry=r
        )
        self._refused_children = {status: self.refused.labels(str(status)) for status in sorted(REFUSED)}
        # Each family's children by label values (bounded, as the values are): a dict lookup instead of `labels()`.
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def open(self, client: httpx.AsyncClient) -> None:
        """Count this worker in; sample the upstream pool (on scrape, and every few seconds with several workers)."""
        self._client = client
        self.workers.inc()
        if self.files is not None:
            self._sampler = asyncio.get_running_loop().create_task(self._sample_pool_every(POOL_SAMPLE_SECONDS))

    def close(self) -> None:
        """Count this worker out."""
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        self.workers.dec()
        self._client = None
        self._sample_pool()

    def watch_store(self, store: Store) -> Store:
        """The store, each operation timed."""
        return watched(store, self.store_duration, self.store_failures)

    def stream_opened(self, stream: OpenStream) -> None:
        """Count the stream as started, and open."""
        provider = provider_label(stream.turn.provider_asked)
        self._child(self.streams_started, provider, self.models.label(stream.turn.model)).inc()
        self._child(self.streams_open, provider).inc()

    def stream_closed(self, stream: OpenStream) -> None:
        """The stream is no longer open (its provider label as when it opened: the one asked, which never changes)."""
        self._child(self.streams_open, provider_label(stream.turn.provider_asked)).dec()

    def stream_ended(self, summary: StreamSummary) -> None:
        """Count and observe one ended stream: a few samples per stream, whatever its length."""
        provider = provider_label(summary.provider)
        model = self.models.label(summary.model)
        self._child(self.streams_ended, provider, model, summary.outcome, code_label(summary.code)).inc()
        self._child(self.duration, provider, model).observe(summary.duration_seconds)
        if summary.first_token_seconds is not None:
            self._child(self.first_chunk, provider, model).observe(summary.first_token_seconds)
        if summary.output_tokens:
            self._child(self.tokens, provider, model, "output").observe(summary.output_tokens)
        if summary.input_tokens is not None:
            self._child(self.tokens, provider, model, "input").observe(summary.input_tokens)
        if summary.attempts:
            self._child(self.attempts, provider).inc(summary.attempts)
            if summary.attempts > 1:
                self._child(self.retries, provider).inc(summary.attempts - 1)
        for failure in summary.failures:
            self._child(self.failures, provider, error_type_label(failure)).inc()
        if summary.fell_back:
            self._child(self.fallbacks, provider).inc()
        self._child(self.steps, provider).observe(summary.steps)
        for tool, outcome, seconds in summary.tool_calls:
            self._child(self.tool_calls, tool, outcome).inc()
            if seconds:
                self._child(self.tool_duration, tool).observe(seconds)
        if summary.served_by not in ("mock", "") and summary.first_token_seconds is not None:
            self.models.learn(summary.model)

    def request_finished(self, status: int) -> None:
        """Count a refusal."""
        child = self._refused_children.get(status)
        if child is not None:
            child.inc()

    async def endpoint(self, request: Request) -> Response:
        """`GET /metrics`: the text format; when API keys are set, it needs one of them (an `authenticate`
        hook's end users do not get it)."""
        if self.api_keys and not is_key(bearer_token(request.scope), self.api_keys):
            return Response(
                _UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"}, media_type="application/json"
            )
        self._sample_pool()
        if self.files is None:
            body = generate_latest(self.registry)
        else:
            body = await asyncio.to_thread(self.files.exposition)
        return Response(body, headers={"content-type": CONTENT_TYPE})

    def _child(self, family: Counter | Gauge | Histogram, *values: str) -> Any:
        """The family's child for these label values, made once."""
        key = (family, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*values)
        return child

    def _sample_pool(self) -> None:
        """Write the upstream pool's state into its gauges (nothing known: zeros)."""
        state = pool_state(self._client) if self._client is not None else None
        in_use, idle, waiting = state if state is not None else (0, 0, 0)
        self.pool_connections.labels("in_use").set(in_use)
        self.pool_connections.labels("idle").set(idle)
        self.pool_waiting.set(waiting)

    async def _sample_pool_every(self, seconds: float) -> None:
        """Sample the pool now and then, so that a scrape answered by another worker sees this one's."""
        while True:
            self._sample_pool()
            await asyncio.sleep(seconds)
