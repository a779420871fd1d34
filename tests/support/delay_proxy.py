"""A TCP proxy on 127.0.0.1 in front of one server, for store faults a test can script.

The bots reach the store through it by their ordinary settings (``MONGODB_URI`` naming the
proxy's port), so what they see is what a slow or broken network does to the real driver:

* every chunk read from either side waits a random 0..``max_delay`` seconds before it is
  passed on (drawn from a seeded :class:`random.Random`); order is kept within each
  direction, as TCP keeps it, so a later chunk never overtakes an earlier one;
* :meth:`DelayProxy.go_down` drops every open connection and, until :meth:`come_up`, closes
  each new one as soon as it is accepted (a store that is down, or a network between).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from types import TracebackType


class DelayProxy:
    """The proxy. ``await start()`` / ``await stop()``, or ``async with``."""

    def __init__(
        self, target_host: str, target_port: int, *, max_delay: float = 0.05, seed: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self.max_delay = max_delay
        self.port = 0
        self.accepted = 0
        """Connections accepted so far."""
        self.refused = 0
        """Connections closed at once because the proxy was down."""
        self.chunks = 0
        """Chunks passed on (either way)."""
        self._chance = random.Random(seed)  # noqa: S311 - delays, not secrets
        self._down = False
        self._server: asyncio.Server | None = None
        self._pairs: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def down(self) -> bool:
        return self._down

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # aborted connections end their relays; a relay is never cancelled (asyncio's stream
        # server reports a cancelled connection handler as an error)
        self._abort_all()
        await asyncio.gather(*self._pairs, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> DelayProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # faults ------------------------------------------------------------------------------

    def go_down(self) -> None:
        """Drop every connection now, and every new one until :meth:`come_up`."""
        self._down = True
        self._abort_all()

    def come_up(self) -> None:
        self._down = False

    def _abort_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    # relaying ----------------------------------------------------------------------------

    async def _accept(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        self.accepted += 1
        if self._down:
            self.refused += 1
            client_out.transport.abort()
            return
        try:
            server_in, server_out = await asyncio.open_connection(*self.target)
        except OSError:
            client_out.transport.abort()
            return
        if self._down:  # it went down while this one was connecting
            self.refused += 1
            for writer in (client_out, server_out):
                writer.transport.abort()
            return
        self._writers.update((client_out, server_out))
        task = asyncio.current_task()
        assert task is not None
        self._pairs.add(task)
        try:
            await asyncio.gather(
                self._pipe(client_in, server_out), self._pipe(server_in, client_out)
            )
        finally:
            self._pairs.discard(task)
            for writer in (client_out, server_out):
                self._writers.discard(writer)
                writer.transport.abort()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """One direction: read chunks as they come, pass each on after its delay, in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        writer = asyncio.create_task(self._deliver(queue, sink))
        due = 0.0
        try:
            while True:
                try:
                    chunk = await source.read(65536)
                except (ConnectionError, OSError):
                    chunk = b""
                # a chunk never goes before the one ahead of it (TCP keeps order)
                due = max(due, time.monotonic() + self._chance.uniform(0.0, self.max_delay))
                queue.put_nowait((due, chunk))
                if not chunk:
                    break
            await writer
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _deliver(
        self, queue: asyncio.Queue[tuple[float, bytes]], sink: asyncio.StreamWriter
    ) -> None:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not chunk:  # the other side finished: finish this one too
                with contextlib.suppress(OSError):
                    if sink.can_write_eof():
                        sink.write_eof()
                return
            try:
                sink.write(chunk)
                await sink.drain()
            except (ConnectionError, OSError):
                return
            self.chunks += 1
