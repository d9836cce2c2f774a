"""Stream hubs: where live streams are kept for readers and reached by Stop (memory, or Redis when configured)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config import Settings
from .base import Hub, HubUnavailable, Running, StreamInfo, release_whole
from .memory import MemoryHub

__all__ = [
    "Hub",
    "HubUnavailable",
    "MemoryHub",
    "Running",
    "StreamInfo",
    "describe_hub",
    "open_hub",
    "release_whole",
]


def open_hub(settings: Settings) -> Hub:
    """The hub the settings ask for: Redis at `redis_url` (the `redis` extra), else this process's memory."""
    if settings.redis_url:
        from .redis import RedisHub  # imported only when configured

        return RedisHub(
            settings.redis_url,
            settings.redis_prefix,
            settings.resume_ttl_seconds,
            settings.resume_lease_seconds,
            settings.resume_max_batches,
            settings.redis_max_connections,
        )
    return MemoryHub(settings.resume_ttl_seconds, settings.resume_max_batches)


def describe_hub(settings: Settings) -> str:
    """Where live streams are kept, for the start-up line: this process, or Redis's address (never a password)."""
    if not settings.redis_url:
        return "in this process"
    parts = urlsplit(settings.redis_url)
    if parts.scheme == "unix":
        where = parts.path
    else:
        where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{parts.path.lstrip('/') or '0'}"
    return f"in Redis at {where} (keys {settings.redis_prefix}*)"
