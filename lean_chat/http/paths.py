"""The app's paths as it sees them: below its mount point (`root_path`), and which need no credentials."""

from __future__ import annotations

from starlette.types import Scope

__all__ = ["LANE_PATHS", "OPEN_PATHS", "STREAM_PATH", "UI_PATH", "route_path"]

STREAM_PATH = "/chat/stream"
UI_PATH = "/chat/ui"  # the AI SDK's UI message stream (docs/ai-sdk.md)
# The paths whose POST goes down the stream lane (stream_lane.py).
LANE_PATHS = frozenset({STREAM_PATH, UI_PATH})

# Open even when authentication is on, on the plain app and under the FastAPI shim alike: the health check,
# and the API description (the published wire contract; `/docs` and `/redoc` are served by the shim only).
# `/metrics` passes too, and checks the API keys itself (an `authenticate` hook's end users do not get it).
OPEN_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (`root_path`): `/ai/healthz` under `/ai` is `/healthz`."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path
