"""The HTTP app for tests: the real FastAPI app over a real engine, store and the fake model.

``api_factory()`` gives an :class:`Api`: an httpx client on the app in-process (ASGI
transport, fast) and, on demand, the same app on a real uvicorn server on loopback (for
streaming and disconnects). Keys are made through the real key service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from adapters.http.app import build_app
from adapters.http.server import HttpServer
from adapters.http.services import Services
from bot.engine import Engine
from config.agents import AgentsFile
from config.pricing import NO_PRICES, Prices
from config.settings import Settings
from memory.base import ConversationStore, Scope
from tests.support.agents import agents_file, chef, plain
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI


@dataclass
class Api:
    services: Services
    client: httpx.AsyncClient
    servers: list[HttpServer] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.services.engine

    @property
    def store(self) -> ConversationStore:
        return self.services.store

    async def key(
        self, scope: Scope = "admin", *, agents: Sequence[str] = (), name: str = ""
    ) -> str:
        made = len(await self.services.keys.list())
        key, _ = await self.services.keys.create(
            name=name or f"{scope}-{made}", scope=scope, agents=agents
        )
        return key

    async def as_key(
        self, scope: Scope = "admin", *, agents: Sequence[str] = ()
    ) -> httpx.AsyncClient:
        """A client on the app sending a fresh key of ``scope``."""
        key = await self.key(scope, agents=agents)
        return httpx.AsyncClient(
            transport=self.client._transport,
            base_url=self.client.base_url,
            headers={"Authorization": f"Bearer {key}"},
        )

    @property
    def app(self) -> ASGIApp:
        """The app the client talks to."""
        transport = self.client._transport
        assert isinstance(transport, httpx.ASGITransport)
        app: ASGIApp = transport.app
        return app

    async def serve(self) -> str:
        """The same app on a real server on loopback; returns its base URL."""
        server = HttpServer(self.app, host="127.0.0.1", port=0)
        await server.start()
        self.servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    async def close(self) -> None:
        for server in reversed(self.servers):
            await server.stop()
        await self.client.aclose()
        await self.services.turns.aclose()


ApiFactory = Callable[..., Awaitable[Api]]


def api_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_rate": 1000.0,
        "api_burst": 1000,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def api_factory(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> AsyncIterator[ApiFactory]:
    """Apps over ``make_engine``'s engine (SQLite unless ``store=`` is given); agents chef
    (default, with a goal) and plain unless ``agents=`` is given; ``usage``: the model
    client records usage, priced with ``prices``."""
    made: list[Api] = []

    async def factory(
        *,
        agents: AgentsFile | None = None,
        store: ConversationStore | None = None,
        usage: bool = False,
        prices: Prices = NO_PRICES,
        **settings: Any,
    ) -> Api:
        engine = make_engine(
            agents or agents_file(chef(), plain()), store=store, usage=usage, prices=prices
        )
        settings.setdefault("openai_base_url", fake_openai.base_url)
        services = Services.build(api_settings(**settings), engine)
        app = build_app(services=services)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://parley.test"
        )
        api = Api(services=services, client=client)
        made.append(api)
        return api

    yield factory
    for api in reversed(made):
        await api.close()


@pytest.fixture
async def api(api_factory: ApiFactory) -> Api:
    return await api_factory()
