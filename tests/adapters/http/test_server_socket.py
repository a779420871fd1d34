"""The HTTP server's own socket: errors people can act on, and responses without Nagle delays."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from adapters.http.host import WebHost
from adapters.http.server import ServerStartError
from config.settings import Settings


async def test_accepted_connections_have_tcp_nodelay() -> None:
    """asyncio turns Nagle off only on sockets that declare TCP; keep-alive responses
    otherwise wait ~40 ms for a delayed ACK."""
    web = WebHost(host="127.0.0.1", port=0)
    await web.start()
    try:
        server = web.server._server
        assert server is not None
        (listener,) = server.servers[0].sockets
        assert listener.proto == socket.IPPROTO_TCP
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{web.port}/healthz") as response,
        ):
            assert response.status == 200
            transports = [c.transport for c in server.server_state.connections]
            assert transports, "the keep-alive connection is open"
            accepted = transports[0].get_extra_info("socket")
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await web.stop()


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        web = WebHost(host="127.0.0.1", port=port)
        with pytest.raises(ServerStartError, match=f"cannot listen on port {port}"):
            await web.start()
        await web.stop()


async def test_the_host_guards_connections_as_the_settings_say() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        http_header_timeout=0.5,
        http_max_connections=10,
        trusted_proxies="10.0.0.1, 10.0.0.2",
    )
    web = WebHost(host="127.0.0.1", port=0, settings=settings)
    assert (web.server.guard.header_timeout, web.server.guard.max_connections) == (0.5, 10)
    assert web.server._config.forwarded_allow_ips == ["10.0.0.1", "10.0.0.2"]
    await web.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        async with asyncio.timeout(3.0):
            assert await reader.read() == b"", "a silent connection is closed after 0.5 s"
        writer.close()
    finally:
        await web.stop()
