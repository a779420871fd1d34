"""The API on a real uvicorn server in the test's event loop: it serves, keeps connections,
stops, and a second start is a no-op."""

from __future__ import annotations

import httpx
import pytest

from adapters.http.server import HttpServer
from tests.adapters.http.helpers import API, client_with, create_conversation, say
from tests.support.api import Api


async def test_the_api_is_served_on_loopback(api: Api) -> None:
    base = await api.serve()
    async with client_with(api, await api.key("write"), base_url=base) as client:
        conversation = await create_conversation(client)
        turns = [await say(client, conversation["id"], f"Hi, my name is {n}.") for n in "AB"]
        assert [t["reply"]["seq"] for t in turns] == [3, 5]
        response = await client.get(f"{API}/conversations/{conversation['id']}")
        assert response.json()["message_count"] == 5
        assert "server" not in response.headers, "uvicorn's server header is off"


async def test_start_is_idempotent_and_stop_closes_the_port(api: Api) -> None:
    server = HttpServer(api.app, host="127.0.0.1", port=0)
    await server.start()
    port = server.port
    assert port != 0
    assert server.running
    await server.start()
    assert server.port == port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/healthz")).status_code == 200
        await server.stop()
        assert not server.running
        with pytest.raises(httpx.ConnectError):
            await client.get("/healthz")
    await server.stop()
