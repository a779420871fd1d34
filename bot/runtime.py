"""The composition root: builds the store, model client, token counter and engine from settings,
and starts and stops them in order (reverse order on the way out)."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from bot.engine import Engine
from bot.llm import ModelClient, OpenAIModelClient
from bot.tokens import TokenCounter
from config.agents import AgentsFile
from config.settings import Settings
from memory.base import ConversationStore
from memory.factory import build_store

logger = logging.getLogger(__name__)


def build_model_client(settings: Settings) -> ModelClient:
    key = settings.openai_api_key
    return OpenAIModelClient(
        api_key=key.get_secret_value() if key is not None else None,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
    )


class Runtime:
    """``async with Runtime(settings, agents) as runtime:`` gives a ready engine."""

    def __init__(
        self,
        settings: Settings,
        agents: AgentsFile,
        *,
        store: ConversationStore | None = None,
        model: ModelClient | None = None,
        tokens: TokenCounter | None = None,
    ) -> None:
        self.settings = settings
        self.agents = agents
        self.store = store or build_store(settings)
        self.model = model or build_model_client(settings)
        self.tokens = tokens or TokenCounter()
        self.engine = Engine(
            store=self.store,
            agents=agents,
            model=self.model,
            tokens=self.tokens,
            default_model=settings.bot_model,
        )

    async def __aenter__(self) -> Runtime:
        await self.store.open()
        try:
            models = {
                agent.effective_model(self.settings.bot_model) for agent in self.agents.agents
            }
            for model in sorted(models):
                await asyncio.to_thread(self.tokens.warm, model)
        except BaseException:
            await self.store.close()
            raise
        logger.info("store: %s; model: %s", self.store.description, self.model.description)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self.engine.aclose()
        finally:
            try:
                await self.model.close()
            finally:
                await self.store.close()
