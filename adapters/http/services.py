"""What the HTTP routes work with, built once by the runtime and handed to the app."""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler

from adapters.http.ratelimit import RateLimiter
from bot.catalog import AgentCatalog
from bot.engine import Engine
from bot.keys import ApiKeys
from config.settings import Settings
from memory.base import ConversationStore


@dataclass
class SlackRoute:
    """The ``/slack/events`` slot: the Slack adapter fills it when it starts in HTTP mode."""

    handler: AsyncSlackRequestHandler | None = None


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    keys: ApiKeys
    limiter: RateLimiter
    auth_failures: RateLimiter
    """Failed authentications per client address (API keys and console sign-ins alike)."""
    slack: SlackRoute = field(default_factory=SlackRoute)

    @property
    def store(self) -> ConversationStore:
        return self.engine.store

    @property
    def catalog(self) -> AgentCatalog:
        return self.engine.agents

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> Services:
        return cls(
            settings=settings,
            engine=engine,
            keys=ApiKeys(engine.store),
            limiter=RateLimiter(rate=settings.api_rate, burst=settings.api_burst),
            auth_failures=RateLimiter(
                rate=settings.auth_failure_rate, burst=settings.auth_failure_burst
            ),
        )
