"""One bot, several model servers: each call goes to the client of the provider its agent
names (``provider: local``), so agents on OpenAI and on a local Ollama answer side by side.

The providers are configured by the operator (``MODEL_PROVIDERS__<NAME>__...``); the default
one is ``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``BOT_MODEL``. Each client has its own cap on
calls in flight, so a slow local server never holds the places of calls to another.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from bot.llm import ChatRequest, ModelClient, ModelError
from config.settings import DEFAULT_PROVIDER


class UnknownProvider(ModelError):
    """The request names a provider that is not configured (a stored agent that outlived it)."""


class ModelRouter:
    """A :class:`ModelClient` over one client per provider, chosen by ``request.provider``."""

    def __init__(self, clients: Mapping[str, ModelClient]) -> None:
        if DEFAULT_PROVIDER not in clients:
            raise ValueError(f"the {DEFAULT_PROVIDER!r} provider's client is needed")
        self._clients = dict(clients)

    @property
    def description(self) -> str:
        default = self._clients[DEFAULT_PROVIDER].description
        others = [
            f"{name}: {client.description}"
            for name, client in sorted(self._clients.items())
            if name != DEFAULT_PROVIDER
        ]
        return "; ".join([default, *others])

    def __repr__(self) -> str:
        return f"ModelRouter({self.description})"

    def client(self, provider: str | None) -> ModelClient:
        """The client of ``provider`` (None: the default one)."""
        name = DEFAULT_PROVIDER if provider is None else provider
        found = self._clients.get(name)
        if found is None:
            raise UnknownProvider(f"the model provider {name!r} is not configured")
        return found

    async def stream(self, request: ChatRequest) -> AsyncIterator[str]:
        pieces = self.client(request.provider).stream(request)
        try:
            async for piece in pieces:
                yield piece
        finally:
            if isinstance(pieces, AsyncGenerator):
                await pieces.aclose()

    async def complete(self, request: ChatRequest) -> str:
        return await self.client(request.provider).complete(request)

    async def close(self) -> None:
        """Close every client, each even when another fails to."""
        failed: list[Exception] = []
        for client in self._clients.values():
            try:
                await client.close()
            except Exception as exc:  # noqa: BLE001 - raised once the others are closed
                failed.append(exc)
        if failed:
            raise failed[0]
