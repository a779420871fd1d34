"""The composition root: builds the store, model client, token counter and engine from settings,
and starts and stops them in order (reverse order on the way out)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING

from pydantic import SecretStr

from adapters.base import AdapterHealth, FailureHook, PlatformAdapter
from adapters.http.host import WebHost
from adapters.http.routes.metrics import METRICS
from adapters.http.services import Services
from bot.catalog import AgentCatalog
from bot.embeddings import build_embedder
from bot.engine import Engine
from bot.errors import StoreError
from bot.journal import TurnJournal
from bot.llm import BoundedModelClient, ModelClient, OpenAIModelClient
from bot.looplag import LoopLagMonitor
from bot.observed_model import SpanUsage
from bot.observed_store import observed_store
from bot.providers import ModelRouter
from bot.scheduler import GoalCheckPoster, GoalCheckRunner, GoalScheduler
from bot.telemetry import Telemetry, build_tracer_provider
from bot.tokens import TokenCounter
from bot.usage import UsageLedger, UsageRecorder, UsageSink
from config.agents import Agent, AgentsFile
from config.pricing import load_prices
from config.redact import redact_url
from config.settings import DEFAULT_PROVIDER, Settings
from memory.base import ConversationStore
from memory.factory import build_store

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger(__name__)

JOURNAL_SWEEP_SECONDS = 5.0
"""How often the journal looks for conversations whose lease lapsed (more often with a lease
under twice this)."""


def build_model_client(settings: Settings, usage: UsageSink | None = None) -> ModelClient:
    """One client per model provider (the default one and ``MODEL_PROVIDERS``), each with
    its own cap on calls in flight, behind a router that sends each call to its agent's.
    Every call's token usage goes to ``usage``."""

    def client(key: SecretStr | None, base_url: str | None, limit: int | None) -> ModelClient:
        model = OpenAIModelClient(
            api_key=key.get_secret_value() if key is not None else None,
            base_url=base_url,
            timeout=settings.openai_timeout,
            max_retries=settings.openai_max_retries,
            usage=usage,
        )
        return BoundedModelClient(model, limit=limit or settings.model_concurrency)

    clients = {DEFAULT_PROVIDER: client(settings.openai_api_key, settings.openai_base_url, None)}
    for name, provider in settings.model_providers.items():
        clients[name] = client(provider.api_key, provider.base_url, provider.concurrency)
    return ModelRouter(clients)


def _posters(adapters: list[PlatformAdapter]) -> dict[str, GoalCheckPoster]:
    return {a.name: a for a in adapters if isinstance(a, GoalCheckPoster)}


def build_adapters(
    settings: Settings,
    engine: Engine,
    *,
    web: WebHost | None = None,
    on_failure: FailureHook | None = None,
    journal: TurnJournal | None = None,
) -> list[PlatformAdapter]:
    """The adapters whose tokens are set; each module is imported only when used.
    ``on_failure``: told when an adapter gives up reconnecting for good. ``journal``: where
    they record the messages they will answer (each adapter runs its own without one)."""
    adapters: list[PlatformAdapter] = []
    if settings.slack_enabled:
        from adapters.slack import SlackAdapter

        adapters.append(
            SlackAdapter(
                settings=settings, engine=engine, web=web, on_failure=on_failure, journal=journal
            )
        )
    if settings.discord_enabled:
        from adapters.discord import DiscordAdapter

        adapters.append(
            DiscordAdapter(settings=settings, engine=engine, on_failure=on_failure, journal=journal)
        )
    return adapters


def process_owner() -> str:
    """This process among the ones sharing a store: host, pid and a random part (a pid is
    reused after a restart; the lease of the process before must not look like ours)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Runtime:
    """``async with Runtime(settings, agents) as runtime:`` gives a ready engine.

    :meth:`serve` starts the platform adapters and runs until :meth:`request_stop` (or a
    signal), or until an adapter gives up reconnecting (then :attr:`lost` says which);
    everything stops in the reverse order of start.
    """

    def __init__(
        self,
        settings: Settings,
        agents: AgentsFile,
        *,
        store: ConversationStore | None = None,
        model: ModelClient | None = None,
        tokens: TokenCounter | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        """``telemetry``: where metrics and spans go; by default metrics of the runtime's own,
        and spans exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set."""
        self.settings = settings
        self.agents = agents
        self._tracer_provider: TracerProvider | None = None
        if telemetry is None:
            endpoint = settings.otel_exporter_otlp_endpoint
            self._tracer_provider = build_tracer_provider(endpoint) if endpoint else None
            telemetry = Telemetry.of(self._tracer_provider)
        self.telemetry = telemetry
        self.store = observed_store(store or build_store(settings), telemetry)
        self.tokens = tokens or TokenCounter(settings.token_counting)
        self.recorder = UsageRecorder(
            store=self.store, count=self.tokens.count, limit=settings.usage_buffer
        )
        """Given to the model client built here; a model passed in records no usage."""
        self.usage = UsageLedger(
            store=self.store, prices=load_prices(settings.prices_file), recorder=self.recorder
        )
        self.model = model or build_model_client(
            settings,
            usage=SpanUsage(self.recorder, telemetry) if telemetry.tracing else self.recorder,
        )
        self.catalog = AgentCatalog(agents, self.store, providers=settings.provider_names)
        self.embedder = build_embedder(settings)
        self.engine = Engine(
            store=self.store,
            agents=self.catalog,
            model=self.model,
            tokens=self.tokens,
            default_model=settings.bot_model,
            provider_models=settings.provider_models,
            api_turns_per_key=settings.api_turns_per_key,
            api_turn_share=settings.api_turn_share,
            max_queued_per_conversation=settings.max_queued_per_conversation,
            embedder=self.embedder,
            usage=self.usage,
            telemetry=telemetry,
        )
        lease = settings.journal_lease_seconds
        self.journal = TurnJournal(
            engine=self.engine,
            owner=process_owner(),
            lease_seconds=lease,
            sweep_every=min(JOURNAL_SWEEP_SECONDS, lease / 2),
        )
        self.adapters: list[PlatformAdapter] = []
        self.services = Services.build(settings, self.engine, self.journal)
        self.services.readiness.journal_backlog = self.store.journal_backlog
        self.web: WebHost | None = None
        if settings.api_enabled or settings.slack_enabled or settings.discord_enabled:
            self.web = WebHost(
                host=settings.host,
                port=settings.port,
                services=self.services if settings.api_enabled else None,
                settings=settings,
            )
            self.web.app.state.readiness = self.services.readiness  # /readyz without the API
            setattr(self.web.app.state, METRICS, telemetry.metrics)  # /metrics without it
        self.lost: AdapterHealth | None = None
        """The adapter that gave up reconnecting, if one did."""
        self._stop = asyncio.Event()
        self._grace_ends: float | None = None
        """When the shutdown grace ends (the loop's clock), once stopping."""
        self.loop_lag = LoopLagMonitor()
        telemetry.metrics.watch_loop_lag(self.loop_lag)
        self._exit = AsyncExitStack()
        """What :meth:`__aenter__` started, stopped in reverse by :meth:`__aexit__`."""

    def request_stop(self) -> None:
        self.journal.stop_taking()  # at once: no new turn starts while the rest stops
        self._stop.set()

    def _adapter_lost(self, health: AdapterHealth) -> None:
        if self.lost is None:
            self.lost = health
            logger.error("%s connection lost for good; stopping", health.name)
        self.request_stop()

    def build_adapters(self) -> list[PlatformAdapter]:
        return build_adapters(
            self.settings,
            self.engine,
            web=self.web,
            on_failure=self._adapter_lost,
            journal=self.journal,
        )

    async def serve(self, adapters: list[PlatformAdapter]) -> None:
        """Start the HTTP server, ``adapters``, the journal, the goal-check scheduler and the
        stored-agent refresher; wait for a stop request, then stop them in reverse order.

        Each stop is pushed on the exit stack just before its start, so a start that fails
        halfway is undone like a finished one, and every way out stops the same things in
        the reverse order of start.
        """
        async with AsyncExitStack() as stack:
            # started first and stopped last: it watches all the rest
            await stack.enter_async_context(self.loop_lag)
            for adapter in adapters:
                self.services.readiness.add(adapter)
            if self.web is not None:
                stack.push_async_callback(self.web.stop)
                await self.web.start()
            stack.push_async_callback(self._stop_adapters)
            # The adapters record messages and start the journal's drains from their first
            # message on, so the journal stops before them on every way out (a stop
            # requested while an adapter still starts too): replies in progress get the
            # grace while the adapters can still show them, and record what arrives meanwhile.
            stack.push_async_callback(self._stop_journal)
            if not await self._unless_stopped(self._start_adapters(adapters)):
                return
            await self.journal.start()  # takes over what an earlier process left unfinished
            runner = GoalCheckRunner(engine=self.engine, posters=_posters(self.adapters))
            scheduler = GoalScheduler(runner=runner, agents=list(await self._all_agents()))
            stack.push_async_callback(scheduler.stop)
            await scheduler.start()
            refresher = asyncio.create_task(self._refresh_agents(scheduler), name="agents")
            stack.push_async_callback(_cancelled, refresher)
            await self._stop.wait()

    async def _stop_journal(self) -> None:
        """Replies in progress get ``SHUTDOWN_GRACE``; the rest stays in the journal for the
        next process. The engine's own close gets what is left of it (:meth:`_grace_left`)."""
        self._grace_ends = asyncio.get_running_loop().time() + self.settings.shutdown_grace
        await self.journal.stop(grace=self.settings.shutdown_grace)

    async def _unless_stopped(self, work: Awaitable[None]) -> bool:
        """Run ``work``, cancelled if a stop is requested first (a start that waits for
        Discord's session start limit, say). False when it was stopped."""
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (task, stop):
                waiting.cancel()
            await asyncio.gather(task, stop, return_exceptions=True)
        if task.cancelled():
            return False
        task.result()
        return True

    async def _all_agents(self) -> tuple[Agent, ...]:
        try:
            return await self.catalog.refresh()
        except StoreError as exc:
            logger.warning("stored agents not read (%s); file agents only for now", exc)
            return self.catalog.agents

    async def _refresh_agents(self, scheduler: GoalScheduler) -> None:
        """Pick up agents stored (or changed) by other processes for the goal-check schedule."""
        while True:
            await asyncio.sleep(self.settings.agents_refresh_seconds)
            scheduler.sync(list(await self._all_agents()))

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

    def _grace_left(self) -> float:
        """What is left of ``SHUTDOWN_GRACE`` for the engine's turns: the journal's drains
        had it first, and a turn they gave up on (its entry stays for the next process) must
        not hold the exit past it."""
        if self._grace_ends is None:
            return self.settings.shutdown_grace
        return max(0.0, self._grace_ends - asyncio.get_running_loop().time())

    async def __aenter__(self) -> Runtime:
        async with AsyncExitStack() as stack:
            provider = self._tracer_provider
            if provider is not None:  # stopped last: it exports the spans of all the rest
                stack.push_async_callback(asyncio.to_thread, provider.shutdown)
                logger.info(
                    "tracing: spans exported to %s",
                    redact_url(self.settings.otel_exporter_otlp_endpoint or ""),
                )
            await self.store.open()
            stack.push_async_callback(self.store.close)
            stack.push_async_callback(self.recorder.aclose)  # after every model call ended
            models = {
                agent.effective_model(self.settings.bot_model, self.settings.provider_models)
                for agent in self.agents.agents
            }
            for model in sorted(models):
                await asyncio.to_thread(self.tokens.warm, model)
            await self._sync_knowledge()
            stack.push_async_callback(self.model.close)
            if self.embedder is not None:
                stack.push_async_callback(self.embedder.close)
            stack.push_async_callback(self._close_engine)
            stack.push_async_callback(self._stop_adapters)  # those :meth:`posters` started
            self._exit = stack.pop_all()
        logger.info("store: %s; model: %s", self.store.description, self.model.description)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exit_stack, self._exit = self._exit, AsyncExitStack()
        await exit_stack.aclose()

    async def _sync_knowledge(self) -> None:
        """Index the agents' knowledge files that changed since the last start. A document
        that cannot be read is logged and left out; the bot starts anyway."""
        engine = self.engine
        report = await engine.knowledge.sync(
            self.agents.agents,
            self.settings.agents_file.parent,
            lambda agent: lambda text: engine.count_tokens(text, agent),
        )
        logger.info(report.line())
        for line in report.failed:
            logger.warning("knowledge: %s", line)

    async def _close_engine(self) -> None:
        await self.engine.aclose(grace=self._grace_left())


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
