"""Slow-loris clients on a real server on loopback: connections that trickle their headers are
closed after the header timeout while /healthz answers, connections that ask promptly keep
alive, and connections past the cap are closed at once until the count falls again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from adapters.http.app import build_app
from adapters.http.server import ConnectionGuard, HttpServer
from tests.support.waiting import eventually

TRICKLERS = 50
HEADER_TIMEOUT = 1.0
TRICKLE_EVERY = 0.5
SLOW = "that sent no complete request headers in time"
GET = b"GET /healthz HTTP/1.1\r\nHost: parley.test\r\n\r\n"

ServerFactory = Callable[..., Awaitable[HttpServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    started: list[HttpServer] = []

    async def start(**options: Any) -> HttpServer:
        server = HttpServer(build_app(), host="127.0.0.1", port=0, **options)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection (a reset counts as closed)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(65_536):
            received += chunk
    return received


async def trickle(port: int) -> float:
    """Send a request's headers a byte every half second, never finishing them; the seconds
    from connecting until the server closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    closed = asyncio.create_task(closed_by_server(reader))
    headers = b"GET /healthz HTTP/1.1\r\nHost: parley.test\r\nX-Slow: " + b"a" * 1000
    try:
        for byte in headers:
            if closed.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(bytes([byte]))
                await writer.drain()
            await asyncio.wait([closed], timeout=TRICKLE_EVERY)
        assert closed.done(), "the connection is still open after every byte was trickled"
        assert await closed == b"", "nothing is answered to headers that never end"
        return time.monotonic() - started
    finally:
        writer.close()


async def healthz(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        return (await client.get("/healthz")).status_code


async def test_trickling_connections_are_closed_after_the_header_timeout_while_healthz_answers(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(header_timeout=HEADER_TIMEOUT)
    base = f"http://127.0.0.1:{server.port}"
    caplog.set_level(logging.WARNING, logger="adapters.http.server")

    tricklers = [asyncio.create_task(trickle(server.port)) for _ in range(TRICKLERS)]
    await eventually(lambda: _at_least(server, TRICKLERS))
    answered = [await healthz(base) for _ in range(3)]
    assert server.open_connections >= TRICKLERS, "the tricklers were still connected"
    async with asyncio.timeout(HEADER_TIMEOUT + 5.0):
        lifetimes = await asyncio.gather(*tricklers)

    assert answered == [200, 200, 200]
    assert min(lifetimes) >= HEADER_TIMEOUT * 0.9, "closed by the timeout, not before"
    assert max(lifetimes) < HEADER_TIMEOUT + 2.0, "every trickler was closed near the timeout"
    assert server.guard.timed_out == TRICKLERS

    def closes() -> list[str]:
        return [r.message for r in caplog.records if "no complete request headers" in r.message]

    assert len(closes()) == 1, "one log line for the burst, not one per connection"
    assert await healthz(base) == 200
    await server.stop()
    assert closes()[1:] == [f"closed {TRICKLERS} HTTP connection(s) {SLOW}"], "counted at stop"


async def test_slow_header_closes_are_counted_once_a_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.http.server")
    guard = ConnectionGuard(header_timeout=1.0, max_connections=10, log_every=0.1)
    loop = asyncio.get_running_loop()
    for _ in range(5):
        guard.too_slow(loop)
    await asyncio.sleep(0.15)
    guard.too_slow(loop)
    await asyncio.sleep(0.4)
    guard.too_slow(loop)
    guard.stop()
    assert [r.getMessage() for r in caplog.records] == [
        "closing HTTP connections that send no complete request headers within 1s",
        "closed 5 HTTP connection(s) that sent no complete request headers in time",
        "closed 1 HTTP connection(s) that sent no complete request headers in time",
        "closing HTTP connections that send no complete request headers within 1s",
        "closed 1 HTTP connection(s) that sent no complete request headers in time",
    ]
    assert guard.timed_out == 7


async def test_a_silent_connection_is_closed_too(start_server: ServerFactory) -> None:
    server = await start_server(header_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        async with asyncio.timeout(3.0):
            assert await closed_by_server(reader) == b""
    finally:
        writer.close()
    assert server.guard.timed_out == 1


async def test_keep_alive_connections_that_ask_promptly_stay_open(
    start_server: ServerFactory,
) -> None:
    """The timer runs while a request's headers arrive, not for the connection's life: a
    second request after a pause longer than the timeout is served, and a later request that
    stalls in its headers is closed."""
    server = await start_server(header_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for _ in range(2):
            writer.write(GET)
            status = await reader.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            await reader.readuntil(b'{"status":"ok"}')
            await asyncio.sleep(0.8)
        writer.write(GET[:20])
        started = time.monotonic()
        async with asyncio.timeout(3.0):
            assert await closed_by_server(reader) == b""
        assert time.monotonic() - started >= 0.4
    finally:
        writer.close()
    assert server.guard.timed_out == 1


async def test_connections_past_the_cap_are_closed_until_the_count_falls(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cap, extra = 10, 5
    server = await start_server(header_timeout=30.0, max_connections=cap)
    base = f"http://127.0.0.1:{server.port}"
    caplog.set_level(logging.WARNING, logger="adapters.http.server")
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(cap)]
    try:
        await eventually(lambda: _at_least(server, cap))

        for _ in range(extra):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            with contextlib.suppress(ConnectionError):
                writer.write(GET)
            async with asyncio.timeout(3.0):
                assert await closed_by_server(reader) == b"", "closed, not answered"
            writer.close()
        assert server.guard.refused == extra
        assert server.open_connections == cap

        reader, writer = held[0]
        writer.write(GET)
        assert (await reader.readline()).startswith(b"HTTP/1.1 200"), "open ones are served"
    finally:
        for _, writer in held:
            writer.close()

    await eventually(lambda: _at_most(server, 0))
    assert await healthz(base) == 200, "new connections are taken again"
    messages = [r.message for r in caplog.records]
    assert sum("closing new ones" in m for m in messages) == 1, messages
    assert sum(f"accepting HTTP connections again ({extra} closed" in m for m in messages) == 1


async def _at_least(server: HttpServer, count: int) -> bool:
    return server.open_connections >= count


async def _at_most(server: HttpServer, count: int) -> bool:
    return server.open_connections <= count
