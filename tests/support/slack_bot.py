"""A running Slack adapter for tests: the real adapter, engine and SQLite store, pointed at the
fake Slack and the fake OpenAI server through settings only.

``start_slack()`` (a fixture) starts one and returns a :class:`Bot`, whose helpers send events,
commands and clicks through the fake's Socket Mode connection, check each acknowledgement
arrived within Slack's three seconds, and wait until the adapter has handled them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import SlackAdapter
from bot.engine import Engine
from bot.llm import OpenAIModelClient
from bot.observed_store import observed_store
from bot.telemetry import Telemetry
from bot.tokens import TokenCounter
from config.agents import AgentsFile
from config.settings import Settings
from memory.base import Conversation, PlatformKey
from memory.sqlite import SqliteStore
from tests.support.agents import agents_file, chef, plain
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_slack import (
    SIGNING_SECRET,
    TEAM,
    WAIT,
    Envelope,
    FakeSlack,
    block_actions,
    slash_command,
)
from tests.support.loopback import free_port

CHANNEL = "C0KITCHEN"
DM = "D0ADA"
ADA = "U0ADA"
OLU = "U0OLU"
ACK_BUDGET = 3.0
"""Slack's deadline for acknowledging a delivery."""


@dataclass
class Bot:
    """A running adapter with its engine, store and model client."""

    adapter: SlackAdapter
    engine: Engine
    store: SqliteStore
    model: OpenAIModelClient
    fake: FakeSlack
    expected: int = 0
    closed: bool = False

    async def deliver(self, event: dict[str, Any], **options: Any) -> Envelope:
        """Send an event through Socket Mode; it must be acknowledged within the budget."""
        return await self.acked(await self.fake.send_event(event, **options))

    async def command(self, text: str, **options: Any) -> Envelope:
        payload = slash_command(text, response_url=self.fake.response_url(), **options)
        return await self.acked(await self.fake.send("slash_commands", payload))

    async def click(self, action_id: str, value: str, **options: Any) -> Envelope:
        payload = block_actions(action_id, value, response_url=self.fake.response_url(), **options)
        return await self.acked(await self.fake.send("interactive", payload))

    async def acked(self, envelope: Envelope, *, reaches_listener: bool = True) -> Envelope:
        """Wait for the acknowledgement; count the envelope as one the adapter will handle
        (not so for the bot's own messages, which Bolt drops before any listener)."""
        await self.fake.wait_ack(envelope)
        assert envelope.ack_seconds is not None
        assert envelope.ack_seconds < ACK_BUDGET
        if reaches_listener:
            self.expected += 1
        return envelope

    async def settle(self) -> None:
        """Wait until every delivered event was handled and nothing is in flight."""
        async with asyncio.timeout(WAIT):
            await self.adapter.wait_idle(events=self.expected)

    async def conversation(
        self, thread: str, *, channel: str = CHANNEL, team: str = TEAM
    ) -> Conversation | None:
        return await self.store.find_conversation(
            key=PlatformKey(platform="slack", workspace=team, channel=channel, thread=thread)
        )

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.adapter.stop()
        await self.engine.aclose()
        await self.model.close()
        await self.store.close()


BotFactory = Callable[..., Awaitable[Bot]]


@pytest.fixture(scope="session")
def slack_tokens() -> TokenCounter:
    return TokenCounter()


@pytest.fixture
async def start_slack(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_slack: FakeSlack,
    fake_openai: FakeOpenAI,
    slack_tokens: TokenCounter,
) -> AsyncIterator[BotFactory]:
    """Starts bots (Socket Mode unless ``mode="http"``); all are stopped after the test.

    Agents: ``chef`` (the default, with a goal) and ``plain``.
    """
    made: list[Bot] = []

    async def factory(
        *,
        agents: AgentsFile | None = None,
        mode: str = "socket",
        store_path: Path | None = None,
        max_pending_turns: int = 10_000,
        edit_interval: float = 0.01,
        port: int | None = None,
        bot_token: str | None = None,
        app_token: str | None = None,
        telemetry: Telemetry | None = None,
        **options: Any,
    ) -> Bot:
        """``telemetry``: the engine's, which also observes the store (as the runtime's does)."""
        store = SqliteStore(path=store_path or tmp_path / "parley.sqlite3")
        await store.open()
        model = OpenAIModelClient(
            api_key="sk-test", base_url=fake_openai.base_url, timeout=5, max_retries=0
        )
        engine = Engine(
            store=store if telemetry is None else observed_store(store, telemetry),
            agents=agents or agents_file(chef(), plain()),
            model=model,
            tokens=slack_tokens,
            default_model="gpt-4o-mini",
            max_pending_turns=max_pending_turns,
            telemetry=telemetry,
        )
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token=bot_token or fake_slack.bot_token,
            slack_app_token=app_token or fake_slack.app_token,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake_slack.api_url,
            slack_mode=mode,
            port=port or free_port(),
            bot_data_dir=tmp_path,
        )
        adapter = SlackAdapter(
            settings=settings,
            engine=engine,
            edit_interval=edit_interval,
            http_host="127.0.0.1",
            **options,
        )
        bot = Bot(adapter=adapter, engine=engine, store=store, model=model, fake=fake_slack)
        made.append(bot)
        try:
            await adapter.start()
        except BaseException:
            await bot.close()
            raise
        return bot

    yield factory
    for bot in reversed(made):
        await bot.close()


def texts(fake: FakeSlack, thread: str, channel: str = CHANNEL) -> list[str]:
    """What the bot shows in a thread, in order."""
    return fake.thread_texts(channel, thread)


async def responses(fake: FakeSlack, count: int = 1) -> list[dict[str, Any]]:
    """What was posted to response URLs, once there are at least ``count``."""
    return await fake.wait_for(lambda: fake.responses if len(fake.responses) >= count else None)
