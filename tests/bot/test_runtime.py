"""The runtime's telemetry: ``python -m bot run``'s process, on Discord (the fake), scraped
through its own app: the turn, its store operations and Discord calls, the adapter's
connection, the journal's backlog and the event loop's lag, behind ``METRICS_TOKEN``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.runtime import Runtime
from tests.support.discord_bot import ADA, CHEF_ROOM, answer, runtime_settings, world_agents
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI
from tests.support.metrics import Scrape
from tests.support.waiting import eventually

TOKEN = "runtime-metrics-token"


@pytest.fixture
async def runtime(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fake_discord: FakeDiscord,
    fake_openai: FakeOpenAI,
    clean_env: pytest.MonkeyPatch,
) -> AsyncIterator[Runtime]:
    settings = runtime_settings(
        fake_discord,
        fake_openai,
        tmp_path,
        metrics_token=TOKEN,
        api_enabled=getattr(request, "param", True),
    )
    async with Runtime(settings, world_agents()) as made:
        serving = asyncio.create_task(made.serve(made.build_adapters()))
        try:
            yield made
        finally:
            made.request_stop()
            await asyncio.wait_for(serving, timeout=15)


async def scrape(runtime: Runtime) -> Scrape:
    assert runtime.web is not None
    transport = httpx.ASGITransport(app=runtime.web.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return Scrape.parse(response.text)


async def test_the_runtime_serves_its_whole_process_on_metrics(
    runtime: Runtime, fake_discord: FakeDiscord
) -> None:
    async def connected() -> bool:
        return bool(runtime.adapters) and runtime.adapters[0].health().ready

    await eventually(connected, within=15)
    await answer(fake_discord, CHEF_ROOM, ADA, "Hi", expect="You said: Ada: Hi")

    async def settled() -> bool:
        found = await scrape(runtime)
        return found.value("parley_journal_backlog") == 0

    await eventually(settled, within=10)
    found = await scrape(runtime)
    turns = "parley_turns_total"
    assert found.value(turns, platform="discord", agent="chef", outcome="ok") == 1
    assert found.value("parley_adapter_connected", adapter="discord") == 1
    seconds = "parley_store_operation_duration_seconds_count"
    assert found.value(seconds, operation="append_message") == 2
    assert found.value(seconds, operation="journal_add_and_take") == 1, "recorded and taken"
    assert found.total("parley_platform_api_calls_total", platform="discord") > 0
    assert ("parley_event_loop_lag_seconds", frozenset()) in found.samples
    assert runtime.telemetry.tracing is False, "no OTEL_EXPORTER_OTLP_ENDPOINT, no tracing"


@pytest.mark.parametrize("runtime", [False], indirect=True, ids=["api-off"])
async def test_metrics_are_served_with_the_api_off(runtime: Runtime) -> None:
    """Socket-style platforms alone still get the HTTP server, for probes and scrapes."""

    async def connected() -> bool:
        found = await scrape(runtime)
        return found.value("parley_adapter_connected", adapter="discord") == 1

    await eventually(connected, within=15)
    assert runtime.web is not None
    assert not hasattr(runtime.web.app.state, "services")


@pytest.mark.parametrize("counting", ["estimate", "exact"])
def test_the_runtime_counts_tokens_as_configured(
    tmp_path: Path,
    fake_discord: FakeDiscord,
    fake_openai: FakeOpenAI,
    clean_env: pytest.MonkeyPatch,
    counting: str,
) -> None:
    settings = runtime_settings(fake_discord, fake_openai, tmp_path, token_counting=counting)
    assert Runtime(settings, world_agents()).tokens.counting == counting
