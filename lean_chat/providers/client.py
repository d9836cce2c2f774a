"""The one pooled httpx client the providers share for the app's life, and the transport under it."""

from __future__ import annotations

import importlib.util
import os
import ssl
import sys
import urllib.request

import httpx

from ..config import Settings
from .transport import LeanTransport, use_lean_transport

__all__ = ["tls_context", "upstream_client", "uses_lean_transport"]


def _skip_absent_sniffio() -> None:
    """Make httpcore's per-request `import sniffio` fail at once when sniffio is not installed.

    httpcore tries that import several times per request; when the module is absent each failed try
    searches every `sys.path` entry again (~35 us each, about a quarter of httpx's CPU per request).
    A `None` entry in `sys.modules` gives the same ImportError without the search.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def tls_context() -> ssl.SSLContext:
    """Certificates of the system (OpenSSL's defaults, which honour SSL_CERT_FILE and SSL_CERT_DIR), plus certifi's.

    certifi's bundle (what httpx trusts by default) is added when neither variable is set, so a host whose
    system store is empty still reaches the public providers.
    """
    context = ssl.create_default_context()
    if not (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")):
        try:
            import certifi

            context.load_verify_locations(cafile=certifi.where())
        except (ImportError, OSError):
            pass
    context.set_alpn_protocols(["http/1.1"])
    return context


def uses_lean_transport(settings: Settings) -> bool:
    """The lean transport unless settings ask for httpx's own, HTTP/2 is on, or the environment names a proxy."""
    return settings.upstream_transport != "httpx" and not settings.http2 and not urllib.request.getproxies()


def upstream_client(settings: Settings) -> httpx.AsyncClient:
    """A keep-alive client with the configured timeouts and pool (enter it with `async with`)."""
    timeout = httpx.Timeout(
        settings.request_timeout_seconds,
        connect=settings.connect_timeout_seconds,
        read=settings.read_timeout_seconds,
        pool=settings.pool_timeout_seconds,
    )
    if uses_lean_transport(settings):
        transport = LeanTransport(
            ssl_context=tls_context(),
            max_connections=settings.max_connections,
            keepalive_expiry=settings.keepalive_expiry_seconds,
        )
        client = httpx.AsyncClient(timeout=timeout, transport=transport)
        use_lean_transport(client, transport)
        return client
    _skip_absent_sniffio()
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
        keepalive_expiry=settings.keepalive_expiry_seconds,
    )
    return httpx.AsyncClient(timeout=timeout, limits=limits, http2=settings.http2)
