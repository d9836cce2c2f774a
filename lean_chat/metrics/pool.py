"""The upstream connection pool's state, read from lean_chat's own transport or httpx's default one (httpcore)."""

from __future__ import annotations

from typing import Any

import httpx

from ..providers.transport import lean_transport_of

__all__ = ["pool_state"]


def pool_state(client: httpx.AsyncClient) -> tuple[int, int, int] | None:
    """(connections in use, idle connections, requests waiting for one), or None for a transport without a pool.

    Walks the pool's lists once: called on a scrape and every few seconds, never per request.
    """
    lean = lean_transport_of(client)
    if lean is not None:
        idle = lean.idle_connections
        return lean.open_connections - idle, idle, lean.waiting_requests
    pool: Any = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "connections", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(connections, list) or not isinstance(requests, list):
        return None
    idle = sum(1 for connection in connections if connection.is_idle())
    waiting = sum(1 for request in requests if request.is_queued())
    return len(connections) - idle, idle, waiting
