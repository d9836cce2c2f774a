"""Metrics: what the app counts, as a no-op base class; Prometheus families load only when metrics are on.

    Metrics                      the hooks, doing nothing (metrics off: no prometheus-client import)
    └── PrometheusMetrics        prometheus.py: the families, `GET /metrics`, several workers via files.py

Hooks run per request, per stream or per store operation, never per token.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from starlette.requests import Request
    from starlette.responses import Response

    from ..config import Settings
    from ..store.base import Store
    from .summary import OpenStream, StreamSummary

__all__ = ["MULTIPROCESS_ENV", "Metrics", "load_metrics", "metrics_state"]

# prometheus-client's own variable: the folder where several worker processes keep their figures.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXTRA_MISSING = "metrics are on but prometheus-client is not installed: pip install 'lean-chat[metrics]'"


class Metrics:
    """The app's metric hooks; this base class counts nothing."""

    enabled = False

    def open(self, client: httpx.AsyncClient) -> None:
        """The app started, with this upstream client."""

    def close(self) -> None:
        """The app stops."""

    def watch_store(self, store: Store) -> Store:
        """The store, timed per operation when metrics are on."""
        return store

    def stream_opened(self, stream: OpenStream) -> None:
        """A stream starts: counted open until `stream_closed` (a pair of calls: no context manager per stream)."""

    def stream_closed(self, stream: OpenStream) -> None:
        """A stream counted by `stream_opened` is no longer open (called once, whatever ended it)."""

    def stream_ended(self, summary: StreamSummary) -> None:
        """A stream ended."""

    def request_finished(self, status: int) -> None:
        """A request was answered with this status."""

    async def endpoint(self, request: Request) -> Response:
        """`GET /metrics` (routed only when metrics are on)."""
        raise NotImplementedError


def load_metrics(settings: Settings, **options: Any) -> Metrics:
    """Prometheus metrics when `settings.metrics` is on (ImportError naming the extra if it is missing)."""
    if not settings.metrics:
        return Metrics()
    try:
        from .prometheus import PrometheusMetrics
    except ImportError as exc:
        if exc.name is not None and exc.name.startswith("prometheus_client"):
            raise ImportError(EXTRA_MISSING, name=exc.name) from exc
        raise
    return PrometheusMetrics(settings, **options)


def metrics_state(enabled: bool) -> str:
    """What the start-up line says about metrics."""
    if enabled:
        return "at /metrics"
    if importlib.util.find_spec("prometheus_client") is None:
        return "off (pip install 'lean-chat[metrics]' for /metrics)"
    return "off"
