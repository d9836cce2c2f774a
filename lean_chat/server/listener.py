"""The listening socket, served so that every waiting connection is accepted in one event-loop turn.

uvloop (libuv 1.52 under it) accepts one connection per turn of the loop. A turn lasts as long as its work: with
1,000 relayed streams running, about 50 ms. A crowd arriving together then waits in the kernel's accept queue,
for seconds, while the process still has room: measured at 1,300 streams started within a second, about 30
connections a second were accepted, first tokens waited up to 5 s and the queue held 600 connections.
asyncio's own loop accepts up to the backlog each turn; `Acceptor` does the same on either loop, with
`loop.connect_accepted_socket`. `Server` is uvicorn's server with its listening sockets served that way;
`serve` runs it in one process as `uvicorn.run` would. Under uvicorn's own server (its command line, its
`--workers` supervisor) the loop does it instead: `lean_chat.server.loop` makes uvloop's `create_server` use `Acceptor`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any, cast

import uvicorn

__all__ = ["Acceptor", "Server", "serve"]

logger = logging.getLogger("lean_chat.listener")
_uvicorn_logger = logging.getLogger("uvicorn.error")  # where uvicorn says where it listens

# Seconds before accepting again after the process ran out of file descriptors (asyncio waits as long).
RETRY_AFTER_EMFILE = 1.0
# Errors of one connection that went away before it was accepted: the next one may still be fine.
_GONE = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})


class Acceptor:
    """Accepts every connection waiting on a listening socket (up to the backlog) each time it is readable."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        backlog: int,
        ssl: Any = None,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = protocol_factory
        self._backlog = max(1, backlog)
        self._ssl = ssl
        self._opening: set[asyncio.Task[Any]] = set()  # connections being handed to the loop (tasks need a holder)
        self._closed = False
        sock.setblocking(False)
        sock.listen(self._backlog)
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        """Take every waiting connection; each becomes a transport with a fresh protocol."""
        accept, open_socket = self._sock.accept, self._loop.connect_accepted_socket
        for _ in range(self._backlog):
            try:
                conn, _ = accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _GONE:
                    continue
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    logger.error("cannot accept connections (%s); trying again in %.0f s", exc, RETRY_AFTER_EMFILE)
                    self._loop.remove_reader(self._sock.fileno())
                    self._loop.call_later(RETRY_AFTER_EMFILE, self._resume)
                    return
                logger.error("accepting a connection failed: %s", exc)  # the next turn tries again
                return
            task = self._loop.create_task(open_socket(self._factory, conn, ssl=self._ssl))
            self._opening.add(task)
            task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[Any]) -> None:
        """A connection is the loop's now (or failed to open: its socket is closed, nothing else to do)."""
        self._opening.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("a connection failed to open: %r", task.exception())

    def _resume(self) -> None:
        """Listen again after running out of file descriptors."""
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting (connections already open stay open) and close the listening socket."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    async def wait_closed(self) -> None:
        """Nothing to wait for once closed (uvicorn's shutdown awaits it)."""


class Server(uvicorn.Server):
    """uvicorn's server, with TCP listening sockets served by `Acceptor` (Unix sockets and `fd` as uvicorn does)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Run the lifespan's startup, bind (unless given sockets), then listen with an `Acceptor` per socket."""
        config = self.config
        if sockets is None and (config.uds is not None or config.fd is not None):
            await super().startup(sockets)
            return
        bound = sockets is None
        if sockets is None:
            # Bound before the lifespan runs (uvicorn binds after): a taken port then fails in one line, before
            # the store, Redis or anything else has been opened that would have to be shut down again.
            try:
                sockets = [bind(config.host, config.port)]
            except OSError as exc:
                logger.error("%s", cannot_listen(config.host, config.port, exc))
                self.should_exit = True  # never started: the process exits with 3
                return
        await super().startup(sockets=[])  # the lifespan only: uvicorn listens on nothing itself
        if not self.started:
            for sock in sockets if bound else ():
                sock.close()
            return
        self.started = False  # not until it listens (those waiting for `started` may connect at once)
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        acceptors = [Acceptor(loop, sock, protocol, config.backlog, config.ssl) for sock in sockets]
        self.servers = cast(list[Any], acceptors)  # uvicorn's shutdown closes them, then awaits wait_closed
        self.started = True
        if bound:
            scheme = "https" if config.is_ssl else "http"
            host = f"[{config.host}]" if ":" in config.host else config.host
            port = sockets[0].getsockname()[1]
            _uvicorn_logger.info("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", scheme, host, port)


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to the address (not listening yet), as uvicorn binds one; OSError when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def cannot_listen(host: str, port: int, exc: OSError) -> str:
    """The one line said when the address cannot be bound."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the address is already in use (another process, perhaps another"
            " lean-chat instance, holds the port: give each instance its own --port)"
        )
    return f"cannot listen on {where}: {exc.strerror or exc}"


def serve(config: uvicorn.Config) -> int:
    """Run one server process as `uvicorn.run` would; the exit status (3 when startup failed, as uvicorn's)."""
    server = Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn raises the signal it caught again once it has shut down
        pass
    return 0 if server.started else 3
