"""The composition root: builds the store, model client, token counter and engine from settings,
and starts and stops them in order (reverse order on the way out)."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from adapters.base import PlatformAdapter
from bot.engine import Engine
from bot.llm import ModelClient, OpenAIModelClient
from bot.scheduler import GoalCheckPoster, GoalCheckRunner, GoalScheduler
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


def _posters(adapters: list[PlatformAdapter]) -> dict[str, GoalCheckPoster]:
    return {a.name: a for a in adapters if isinstance(a, GoalCheckPoster)}


def build_adapters(settings: Settings, engine: Engine) -> list[PlatformAdapter]:
    """The adapters whose tokens are set; each module is imported only when used."""
    adapters: list[PlatformAdapter] = []
    if settings.slack_enabled:
        from adapters.slack import SlackAdapter

        adapters.append(SlackAdapter(settings=settings, engine=engine))
    if settings.discord_enabled:
        from adapters.discord import DiscordAdapter

        adapters.append(DiscordAdapter(settings=settings, engine=engine))
    return adapters


class Runtime:
    """``async with Runtime(settings, agents) as runtime:`` gives a ready engine.

    :meth:`serve` starts the platform adapters and runs until :meth:`request_stop` (or a
    signal); everything stops in the reverse order of start.
    """

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
        self.adapters: list[PlatformAdapter] = []
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def serve(self, adapters: list[PlatformAdapter]) -> None:
        """Start ``adapters`` and the goal-check scheduler, wait for a stop request, then stop
        them in reverse order."""
        scheduler: GoalScheduler | None = None
        try:
            await self._start_adapters(adapters)
            runner = GoalCheckRunner(engine=self.engine, posters=_posters(self.adapters))
            scheduler = GoalScheduler(runner=runner, agents=list(self.agents.agents))
            await scheduler.start()
            await self._stop.wait()
        finally:
            if scheduler is not None:
                await scheduler.stop()
            await self._stop_adapters()

    async def posters(self) -> dict[str, GoalCheckPoster]:
        """Start the configured platforms' adapters (stopped on exit) for posting goal checks."""
        if not self.adapters:
            await self._start_adapters(build_adapters(self.settings, self.engine))
        return _posters(self.adapters)

    async def _start_adapters(self, adapters: list[PlatformAdapter]) -> None:
        for adapter in adapters:
            await adapter.start()
            self.adapters.append(adapter)
            logger.info("%s adapter started", adapter.name)

    async def _stop_adapters(self) -> None:
        while self.adapters:
            adapter = self.adapters.pop()
            try:
                await adapter.stop()
            except Exception:
                logger.exception("%s adapter did not stop cleanly", adapter.name)

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
            await self._stop_adapters()
            await self.engine.aclose()
        finally:
            try:
                await self.model.close()
            finally:
                await self.store.close()
