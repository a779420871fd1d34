"""The bot's one HTTP server: uvicorn serving the FastAPI app inside the bot's event loop.

uvicorn's own ``serve()`` takes over SIGINT and SIGTERM; the bot handles signals itself, so the
server is driven through its startup, main loop and shutdown steps on a socket bound here (a
taken port is a clear start error instead of uvicorn's ``sys.exit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn
from starlette.types import ASGIApp

from bot.errors import ParleyError

logger = logging.getLogger(__name__)


class ServerStartError(ParleyError):
    """The HTTP server could not start (the port is taken, say)."""


class HttpServer:
    """``await start()`` binds and serves; ``await stop()`` drains connections and closes."""

    def __init__(
        self, app: ASGIApp, *, host: str, port: int, graceful_seconds: float = 5.0
    ) -> None:
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=int(graceful_seconds) or 1,
        )
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def host(self) -> str:
        return self._config.host

    @property
    def port(self) -> int:
        """The port listened on (the real one when configured with port 0)."""
        if self._socket is not None:
            return int(self._socket.getsockname()[1])
        return self._config.port

    @property
    def running(self) -> bool:
        return self._loop_task is not None

    async def start(self) -> None:
        """Start serving; a no-op when already serving."""
        if self._loop_task is not None:
            return
        self._socket = self._bind()
        server = uvicorn.Server(self._config)
        self._config.load()
        server.lifespan = self._config.lifespan_class(self._config)
        try:
            await server.startup(sockets=[self._socket])
        except BaseException:
            self._close_socket()
            raise
        self._server = server
        self._loop_task = asyncio.create_task(server.main_loop(), name="http-server")
        logger.info("HTTP server listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        server, task = self._server, self._loop_task
        self._server = self._loop_task = None
        if server is None or task is None:
            self._close_socket()
            return
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.shutdown(sockets=[self._socket] if self._socket is not None else None)
        self._socket = None

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._config.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only for sockets
        # that say they are TCP; without it Nagle and delayed ACKs add ~40 ms per response
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._config.host, self._config.port))
            sock.listen(self._config.backlog)
        except OSError as exc:
            sock.close()
            raise ServerStartError(
                f"cannot listen on port {self._config.port} ({exc.strerror or exc})"
            ) from None
        sock.setblocking(False)
        return sock

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
