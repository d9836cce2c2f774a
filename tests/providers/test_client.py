"""The shared upstream client: settings applied, and httpcore's sniffio probe made cheap when sniffio is absent."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from lean_chat.config import Settings
from lean_chat.providers.client import upstream_client

pytestmark = pytest.mark.anyio


async def test_client_takes_the_configured_timeouts() -> None:
    settings = Settings(connect_timeout_seconds=1.5, read_timeout_seconds=7.0, request_timeout_seconds=30.0)
    async with upstream_client(settings) as client:
        assert client.timeout.connect == 1.5
        assert client.timeout.read == 7.0
        assert client.timeout.write == 30.0


async def test_absent_sniffio_fails_to_import_without_a_path_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    installed = importlib.util.find_spec("sniffio") is not None
    async with upstream_client(Settings(upstream_transport="httpx")):
        pass
    if installed:
        import sniffio  # type: ignore[import-not-found,unused-ignore]

        assert sniffio.current_async_library() == "asyncio"
    else:
        assert "sniffio" in sys.modules and sys.modules["sniffio"] is None
        with pytest.raises(ImportError):
            import sniffio  # noqa: F401
