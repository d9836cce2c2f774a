"""The event loop to serve lean_chat on: uvloop, its TCP servers accepting every waiting connection each turn.

uvicorn loads a loop factory by import string: `uvicorn ... --loop lean_chat.server.loop:new_event_loop`. uvicorn's
supervisor hands the setting to each worker, so `--workers N` gets it too. The loop is uvloop's, except that
`create_server` for a TCP socket (bound here from host and port, or given, as uvicorn's workers are) listens with
`lean_chat.server.listener.Acceptor` instead of libuv's one-connection-a-turn listener. uvloop keeps what uvicorn does
not ask for: Unix sockets, `start_serving=False`, SSL handshake and shutdown timeouts. Without uvloop (uvicorn's
`standard` extra has none on Windows) it is asyncio's loop, which already accepts up to the backlog each turn.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .listener import Acceptor

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it (not on Windows)
    uvloop = None  # type: ignore[assignment]

__all__ = ["CrowdServer", "new_event_loop"]


class CrowdServer(asyncio.AbstractServer):
    """A listening server made of one `Acceptor` per socket (what `create_server` returns)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, acceptors: list[Acceptor], sockets: list[socket.socket]):
        self._loop = loop
        self.acceptors = acceptors
        self._sockets = tuple(sockets)
        self._closed = asyncio.Event()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (none once closed)."""
        return () if self._closed.is_set() else self._sockets

    def close(self) -> None:
        """Stop accepting; connections already open stay open."""
        for acceptor in self.acceptors:
            acceptor.close()
        self._closed.set()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop it accepts on."""
        return self._loop

    def is_serving(self) -> bool:
        """True until closed."""
        return not self._closed.is_set()

    async def start_serving(self) -> None:
        """It serves from creation on."""

    async def serve_forever(self) -> None:
        """Wait until closed."""
        await self._closed.wait()

    async def wait_closed(self) -> None:
        """Wait until closed."""
        await self._closed.wait()


def _bind(infos: Iterable[tuple[Any, ...]], reuse_address: bool, reuse_port: bool) -> list[socket.socket]:
    """A bound TCP socket per address, as asyncio's `create_server` makes them (IPv6 ones IPv6 only)."""
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if reuse_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                message = f"error while attempting to bind on address {address!r}: {(exc.strerror or '').lower()}"
                raise OSError(exc.errno, message) from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


if uvloop is not None:

    class CrowdLoop(uvloop.Loop):
        """uvloop's loop; a TCP server made here accepts every waiting connection each time its socket is ready."""

        async def create_server(  # type: ignore[override]
            self,
            protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: str | Sequence[str] | None = None,
            port: int | None = None,
            *,
            family: int = socket.AF_UNSPEC,
            flags: int = socket.AI_PASSIVE,
            sock: socket.socket | None = None,
            backlog: int = 100,
            ssl: Any = None,
            reuse_address: bool | None = None,
            reuse_port: bool | None = None,
            ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
            start_serving: bool = True,
        ) -> asyncio.AbstractServer:
            """Listen on the socket given, or on those bound for host and port, with an `Acceptor` each."""
            unix = sock is not None and sock.family == socket.AF_UNIX
            if unix or not start_serving or ssl_handshake_timeout is not None or ssl_shutdown_timeout is not None:
                uvloops: Any = super()
                return await uvloops.create_server(  # type: ignore[no-any-return]
                    protocol_factory, host, port, family=family, flags=flags, sock=sock, backlog=backlog, ssl=ssl,
                    reuse_address=reuse_address, reuse_port=reuse_port, ssl_handshake_timeout=ssl_handshake_timeout,
                    ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving,
                )  # fmt: skip
            if sock is not None:
                if host is not None or port is not None:
                    raise ValueError("host/port and sock can not be specified at the same time")
                sockets = [sock]
            else:
                hosts: list[str | None] = (
                    [None] if host is None or host == "" else [host] if isinstance(host, str) else list(host)
                )
                infos: set[tuple[Any, ...]] = set()
                for name in hosts:
                    found = await self.getaddrinfo(name, port, family=family, type=socket.SOCK_STREAM, flags=flags)
                    infos.update(found)
                reuse = reuse_address if reuse_address is not None else True
                sockets = _bind(infos, reuse, bool(reuse_port))
            factory: Any = protocol_factory
            acceptors = [Acceptor(self, each, factory, backlog, ssl) for each in sockets]
            return CrowdServer(self, acceptors, sockets)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A `CrowdLoop` (asyncio's own loop without uvloop): the loop factory to name to uvicorn's `--loop`."""
    if uvloop is None:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()
    return CrowdLoop()
