"""Honest health (#14): each adapter reports its connection as it is, gives up loudly when its
platform connection is lost for good, and a Discord start waits out a low session start limit.

In-process, against the fake Discord and the fake Slack: the adapters' states, and the
runtime around them (``/readyz`` through the runtime's own app, the stop after a failure, a
shutdown during the wait)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from adapters.base import AdapterHealth, AdapterState
from bot.runtime import Runtime
from tests.support.agents import agents_file, chef
from tests.support.discord_bot import BotFactory, populate, runtime_settings
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_slack import FakeSlack
from tests.support.slack_bot import BotFactory as SlackFactory

WITHIN = 15.0
T = TypeVar("T")


async def eventually(found: Callable[[], T | None], *, within: float = WITHIN) -> T:
    """Poll ``found()`` until it returns something truthy: health is a synchronous look with
    no event to wait on, as a probe sees it."""
    async with asyncio.timeout(within):
        while True:
            value = found()
            if value:
                return value
            await asyncio.sleep(0.02)


async def state_becomes(
    health: Callable[[], AdapterHealth], *states: AdapterState, within: float = WITHIN
) -> AdapterHealth:
    """Wait until ``health()`` is in one of ``states``."""
    return await eventually(
        lambda: now if (now := health()).state in states else None, within=within
    )


# Discord ---------------------------------------------------------------------------------


async def test_discord_health_follows_the_gateway_until_it_is_lost_for_good(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    lost: list[AdapterHealth] = []
    bot = await start_bot(adapter={"on_failure": lost.append}, start=False)
    assert bot.adapter.health() == AdapterHealth("discord", "stopped", "not started")

    await bot.adapter.start()
    health = bot.adapter.health()
    assert (health.state, health.ready) == ("connected", True)
    assert "2 servers, 1 shard open" in health.detail

    await fake_discord.close_for_good(4004)
    failed = await state_becomes(bot.adapter.health, "failed")
    assert not failed.ready
    assert failed.detail == "the Discord gateway refused DISCORD_BOT_TOKEN"
    assert lost == [failed], "the runtime is told once"

    await bot.stop()
    assert bot.adapter.health().state == "failed", "still failed while the process stops"
    assert lost == [failed]


async def test_a_resumed_connection_stays_connected_and_a_stop_is_no_failure(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    lost: list[AdapterHealth] = []
    bot = await start_bot(adapter={"on_failure": lost.append})
    await fake_discord.reconnect()
    await fake_discord.wait_for(
        lambda: [c for c in fake_discord.connections if c.path == "/resume" and 6 in c.ops]
    )
    assert (await state_becomes(bot.adapter.health, "connected")).ready
    await bot.stop()
    assert bot.adapter.health() == AdapterHealth("discord", "stopped", "stopped")
    assert lost == []


async def test_a_low_session_start_limit_makes_the_start_wait_for_its_reset(
    start_bot: BotFactory, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    fake_discord.limit_session_starts(remaining=1, reset_after_ms=1500)
    bot = await start_bot(start=False)
    starting = asyncio.create_task(bot.adapter.start())
    waiting = await eventually(
        lambda: (
            now
            if "session starts" in (now := bot.adapter.health()).detail or starting.done()
            else None
        )
    )
    assert waiting.state == "connecting"
    assert not waiting.ready
    assert "1 of 1000 Discord session starts left" in waiting.detail
    assert fake_discord.identified() == [], "nothing identified while waiting"

    await asyncio.wait_for(starting, timeout=WITHIN)
    assert bot.adapter.health().state == "connected"
    (connection,) = fake_discord.identified()
    asked = fake_discord.limit_asked_at
    assert asked is not None
    assert connection.identified_at is not None
    assert connection.identified_at >= asked + 1.5, "identified only after the reset"
    assert fake_discord.identifies_over_limit == 0
    assert len(fake_discord.calls_to("GET", "/gateway/bot")) == 2, "asked again after the wait"
    warnings = [r for r in caplog.records if "session start limit is low" in r.getMessage()]
    assert len(warnings) == 1, "said once"


async def test_enough_session_starts_means_no_wait(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    fake_discord.limit_session_starts(remaining=3, reset_after_ms=60_000)
    began = time.monotonic()
    await start_bot()
    assert time.monotonic() - began < 10
    assert len(fake_discord.calls_to("GET", "/gateway/bot")) == 1


async def test_stopping_during_the_wait_identifies_nothing(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    fake_discord.limit_session_starts(remaining=0, reset_after_ms=3_600_000)
    bot = await start_bot(start=False)
    starting = asyncio.create_task(bot.adapter.start())
    await eventually(lambda: "session starts" in bot.adapter.health().detail)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert bot.adapter.health().state == "stopped"
    assert fake_discord.identified() == []


async def test_the_start_timeout_scales_with_the_shards(start_bot: BotFactory) -> None:
    bot = await start_bot(adapter={"ready_timeout": 60.0, "guild_ready_timeout": 2.0}, start=False)
    assert bot.adapter.ready_timeout_for(1) == 62.0
    assert bot.adapter.ready_timeout_for(16) == 60.0 + 15 * 5.0 + 16 * 2.0


async def test_a_sharded_bot_reports_its_shards(start_bot: BotFactory) -> None:
    async with FakeDiscord(shards=2) as fake:
        populate(fake)
        bot = await start_bot(fake=fake, discord_sharded=True)
        try:
            health = bot.adapter.health()
            assert health.state == "connected"
            assert "2 shards open" in health.detail
        finally:
            await bot.stop()


# Slack -----------------------------------------------------------------------------------


async def test_slack_socket_mode_health_follows_the_connection_and_gives_up(
    start_slack: SlackFactory, fake_slack: FakeSlack
) -> None:
    lost: list[AdapterHealth] = []
    bot = await start_slack(on_failure=lost.append, reconnect_timeout=1.0, health_interval=0.05)
    assert bot.adapter.health() == AdapterHealth("slack", "connected", "Socket Mode")

    await fake_slack.drop_connections()
    await fake_slack.wait_connected(count=2)
    assert (await state_becomes(bot.adapter.health, "connected")).ready
    assert lost == [], "slack_sdk reconnected by itself"

    fake_slack.fail("apps.connections.open", "invalid_auth", times=None)
    await fake_slack.drop_connections()
    reconnecting = await state_becomes(bot.adapter.health, "reconnecting", "failed")
    assert reconnecting.state == "reconnecting"
    assert not reconnecting.ready
    failed = await state_becomes(bot.adapter.health, "failed")
    assert failed.detail.startswith("no Socket Mode connection for ")
    assert lost == [failed]

    await bot.close()
    assert bot.adapter.health().state == "failed"
    assert lost == [failed]


async def test_slack_http_mode_is_ready_once_serving(start_slack: SlackFactory) -> None:
    bot = await start_slack(mode="http")
    assert bot.adapter.health() == AdapterHealth("slack", "http", "events at /slack/events")
    assert bot.adapter.health().ready
    await bot.close()
    assert bot.adapter.health().state == "stopped"


# the runtime around them -------------------------------------------------------------------


@pytest.fixture
async def discord_runtime(
    tmp_path: Path,
    fake_discord: FakeDiscord,
    fake_openai: FakeOpenAI,
    clean_env: pytest.MonkeyPatch,
) -> AsyncIterator[Runtime]:
    """``python -m bot run``'s runtime on Discord (the fake), not serving yet."""
    settings = runtime_settings(fake_discord, fake_openai, tmp_path)
    async with Runtime(settings, agents_file(chef())) as runtime:
        yield runtime


async def readyz(runtime: Runtime) -> httpx.Response:
    """``GET /readyz`` on the runtime's app (answers after its server stopped too)."""
    assert runtime.web is not None
    transport = httpx.ASGITransport(app=runtime.web.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as client:
        return await client.get("/readyz")


async def test_the_runtime_stops_when_discord_is_lost_for_good(
    discord_runtime: Runtime, fake_discord: FakeDiscord
) -> None:
    runtime = discord_runtime
    serving = asyncio.create_task(runtime.serve(runtime.build_adapters()))
    checks: dict[str, Any] = {}
    async with asyncio.timeout(WITHIN):
        while checks.get("adapters", {}).get("discord", {}).get("state") != "connected":
            await asyncio.sleep(0.05)
            checks = (await readyz(runtime)).json()["checks"]
    assert (await readyz(runtime)).status_code == 200

    await fake_discord.close_for_good(4004)
    await asyncio.wait_for(serving, timeout=WITHIN)
    assert runtime.lost is not None
    assert runtime.lost.name == "discord"

    response = await readyz(runtime)
    assert response.status_code == 503
    assert response.json()["checks"]["adapters"] == {
        "discord": {
            "state": "failed",
            "ready": False,
            "detail": "the Discord gateway refused DISCORD_BOT_TOKEN",
        }
    }


async def test_a_stop_request_ends_a_start_waiting_for_the_session_start_limit(
    discord_runtime: Runtime, fake_discord: FakeDiscord
) -> None:
    runtime = discord_runtime
    fake_discord.limit_session_starts(remaining=0, reset_after_ms=3_600_000)
    serving = asyncio.create_task(runtime.serve(runtime.build_adapters()))
    async with asyncio.timeout(WITHIN):
        while True:
            response = await readyz(runtime)
            discord = response.json()["checks"].get("adapters", {}).get("discord", {})
            if "session starts" in discord.get("detail", ""):
                break
            await asyncio.sleep(0.05)
    assert response.status_code == 503
    assert discord["state"] == "connecting"

    runtime.request_stop()
    await asyncio.wait_for(serving, timeout=5)
    assert runtime.lost is None
    assert fake_discord.identified() == []
