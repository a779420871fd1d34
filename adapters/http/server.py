"""The bot's one HTTP server: uvicorn serving the FastAPI app inside the bot's event loop.

uvicorn's own ``serve()`` takes over SIGINT and SIGTERM; the bot handles signals itself, so the
server is driven through its startup, main loop and shutdown steps on a socket bound here (a
taken port is a clear start error instead of uvicorn's ``sys.exit``).

Every connection is guarded (:class:`GuardedH11Protocol`): one that has not sent a request's
complete headers within ``header_timeout`` seconds of connecting, or of starting its next
request, is closed (slow-loris clients that trickle a byte at a time cannot hold sockets); past
``max_connections`` open connections new ones are closed at once. uvicorn's own settings do
neither: ``timeout_keep_alive`` covers only idle connections between requests, and
``limit_concurrency`` still accepts and keeps the socket to answer 503. The protocol is pinned
to h11 (httptools, if installed, is not used) so the guard sees every connection.

Client addresses and the scheme come from ``X-Forwarded-For`` and ``X-Forwarded-Proto`` only
when the peer is one of ``trusted_proxies`` (uvicorn's ``forwarded_allow_ips``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from typing import Any, ClassVar

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from bot.errors import ParleyError
from config.settings import Settings

logger = logging.getLogger(__name__)

_DEFAULTS = Settings.model_construct()
"""The settings' defaults (without reading the environment), for servers made in tests."""


class ServerStartError(ParleyError):
    """The HTTP server could not start (the port is taken, say)."""


class ConnectionGuard:
    """What every connection of one server shares: the header deadline, the cap on open
    connections, and log lines that stay few under attack: one when a burst of refusals at
    the cap starts and one when it ends; for slow headers one line when closes start, then
    a count every ``log_every`` seconds while they go on."""

    def __init__(
        self, *, header_timeout: float, max_connections: int, log_every: float = 60.0
    ) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.refused = 0
        self.timed_out = 0
        self._log_every = log_every
        self._burst: int | None = None
        self._slow = 0
        self._summary: asyncio.TimerHandle | None = None

    def admit(self, open_now: int) -> bool:
        """Whether a new connection may join the ``open_now`` already open."""
        if open_now < self.max_connections:
            return True
        self.refused += 1
        if self._burst is None:
            self._burst = 0
            logger.warning(
                "%d HTTP connections are open (HTTP_MAX_CONNECTIONS): closing new ones",
                open_now,
            )
        self._burst += 1
        return False

    def closed(self, open_now: int) -> None:
        """A connection closed, leaving ``open_now``; a burst ends below 90% of the cap (so
        a count hovering at the cap does not log on every connection)."""
        if self._burst is not None and open_now <= self.max_connections * 0.9:
            logger.warning("accepting HTTP connections again (%d closed at the cap)", self._burst)
            self._burst = None

    def too_slow(self, loop: asyncio.AbstractEventLoop) -> None:
        """A connection was closed for not sending its headers in time."""
        self.timed_out += 1
        self._slow += 1
        if self._summary is None:
            logger.warning(
                "closing HTTP connections that send no complete request headers within %gs",
                self.header_timeout,
            )
            self._summary = loop.call_later(self._log_every, self._summarise, loop)

    def stop(self) -> None:
        """Log what is left to count (the server stops)."""
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
            self._log_slow()

    def _summarise(self, loop: asyncio.AbstractEventLoop) -> None:
        self._summary = None
        if self._slow:
            self._log_slow()
            self._summary = loop.call_later(self._log_every, self._summarise, loop)

    def _log_slow(self) -> None:
        if self._slow:
            logger.warning(
                "closed %d HTTP connection(s) that sent no complete request headers in time",
                self._slow,
            )
            self._slow = 0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with :attr:`guard` applied to each connection.

    The header timer is armed when the connection is made and when the first bytes of a
    later request arrive (after a response; the idle wait before them is uvicorn's
    keep-alive timeout), and disarmed once h11 has read the request line and headers."""

    guard: ClassVar[ConnectionGuard]

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def with_guard(cls, guard: ConnectionGuard) -> type[GuardedH11Protocol]:
        """A subclass bound to ``guard`` (uvicorn makes protocols from a class it is given)."""
        return type(cls.__name__, (cls,), {"guard": guard})

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.guard.admit(len(self.connections)):
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._disarm()
        super().connection_lost(exc)
        self.guard.closed(len(self.connections))

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._disarm()
        elif self._header_timer is None and self.conn.trailing_data[0]:
            self._arm()  # part of a pipelined request, left over after a response

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.guard.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.guard.too_slow(self.loop)
            self.transport.close()


class HttpServer:
    """``await start()`` binds and serves; ``await stop()`` drains connections and closes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        graceful_seconds: float = 5.0,
        header_timeout: float = _DEFAULTS.http_header_timeout,
        max_connections: int = _DEFAULTS.http_max_connections,
        trusted_proxies: Sequence[str] = tuple(_DEFAULTS.trusted_proxy_list),
        access_log: bool = False,
    ) -> None:
        """``access_log``: one line per request on the ``uvicorn.access`` logger."""
        self.guard = ConnectionGuard(header_timeout=header_timeout, max_connections=max_connections)
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=GuardedH11Protocol.with_guard(self.guard),
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=access_log,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=list(trusted_proxies),
            timeout_graceful_shutdown=int(graceful_seconds) or 1,
        )
        if access_log:  # uvicorn only ever turns the logger off (for every server after)
            logging.getLogger("uvicorn.access").propagate = True
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
    def open_connections(self) -> int:
        """Connections being served now (those closed at the cap are not counted)."""
        return len(self._server.server_state.connections) if self._server is not None else 0

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
        self.guard.stop()

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
