"""What the HTTP routes work with, built once by the runtime and handed to the app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from adapters.base import AdapterHealth
from adapters.http.ratelimit import RateLimiter
from adapters.http.turns import ApiTurns
from bot.catalog import AgentCatalog
from bot.engine import Engine
from bot.journal import TurnJournal
from bot.keys import ApiKeys
from config.settings import Settings
from memory.base import ConversationStore


class HealthReporter(Protocol):
    """What ``/readyz`` asks of a platform adapter (see :class:`adapters.base.PlatformAdapter`)."""

    @property
    def name(self) -> str: ...

    def health(self) -> AdapterHealth: ...


JournalBacklog = Callable[[], Awaitable[int]]
"""How many journalled platform events are not handled yet."""


@dataclass
class Readiness:
    """What ``/readyz`` reports beyond the store, agents and model; the runtime fills it.

    ``adapters``: every platform adapter of the process, added when built and never removed,
    so that one stopping or failed during shutdown still makes the process unready.
    ``journal_backlog``: reported (not judged) when set.
    """

    adapters: list[HealthReporter] = field(default_factory=list)
    journal_backlog: JournalBacklog | None = None

    def add(self, adapter: HealthReporter) -> None:
        if all(known is not adapter for known in self.adapters):
            self.adapters.append(adapter)

    def health(self) -> list[AdapterHealth]:
        return [adapter.health() for adapter in self.adapters]


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    keys: ApiKeys
    limiter: RateLimiter
    auth_failures: RateLimiter
    """Failed authentications per client address (API keys and console sign-ins alike)."""
    turns: ApiTurns
    """Where the API's and the console's turns start (through the journal)."""
    readiness: Readiness = field(default_factory=Readiness)

    @property
    def store(self) -> ConversationStore:
        return self.engine.store

    @property
    def catalog(self) -> AgentCatalog:
        return self.engine.agents

    @classmethod
    def build(
        cls, settings: Settings, engine: Engine, journal: TurnJournal | None = None
    ) -> Services:
        """``journal``: the process's turn journal (a journal of its own, drained on demand
        and never swept, when there is none: an app built alone, as in tests)."""
        return cls(
            settings=settings,
            engine=engine,
            keys=ApiKeys(engine.store),
            limiter=RateLimiter(rate=settings.api_rate, burst=settings.api_burst),
            auth_failures=RateLimiter(
                rate=settings.auth_failure_rate, burst=settings.auth_failure_burst
            ),
            turns=ApiTurns(engine=engine, journal=journal or TurnJournal(engine=engine)),
        )
