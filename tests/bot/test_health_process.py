"""Honest health (#14) as a supervisor sees it: ``python -m bot run`` as a plain process
against the fake Slack, the fake Discord and the fake model (all in the test's loop).

A Discord gateway closed for good turns ``/readyz`` unready and the process exits with
status 3 after a normal shutdown (an in-flight Slack reply is still delivered); a restart
with few session starts left waits for the limit to reset instead of burning identifies."""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli import EXIT_PLATFORM_LOST
from tests.support.discord_bot import populate
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI, HeldModel
from tests.support.fake_slack import FakeSlack, mention_event
from tests.support.loopback import free_port
from tests.support.process import REPO, start_bot, wait_healthy
from tests.support.slack_bot import CHANNEL

START = 60.0
"""Seconds for a fresh interpreter to import everything and connect (slow CI machines)."""
OPENAI_KEY = "sk-health-process-secret"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    return tmp_path


def model_settings(workdir: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_MAX_RETRIES": "0",
        "BOT_DATA_DIR": str(workdir / "data"),
        "LOG_LEVEL": "INFO",
    }


async def readyz_until(
    client: httpx.AsyncClient, wanted: Callable[[httpx.Response], bool], *, within: float
) -> httpx.Response:
    """Poll ``GET /readyz`` until ``wanted(response)``."""
    async with asyncio.timeout(within):
        while True:
            try:
                response = await client.get("/readyz")
            except httpx.TransportError:
                response = None
            if response is not None and wanted(response):
                return response
            await asyncio.sleep(0.05)


def adapter(response: httpx.Response, name: str) -> dict[str, Any]:
    found: dict[str, Any] = response.json()["checks"].get("adapters", {}).get(name, {})
    return found


async def test_a_gateway_closed_for_good_makes_the_process_unready_then_exit_3(
    workdir: Path, fake_slack: FakeSlack, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    held = HeldModel()
    fake_openai.handle(held)
    port = free_port()
    log = workdir / "bot.log"
    process = await start_bot(
        workdir,
        log,
        "run",
        PORT=str(port),
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_APP_TOKEN=fake_slack.app_token,
        SLACK_API_URL=fake_slack.api_url,
        DISCORD_BOT_TOKEN=fake_discord.token,
        DISCORD_API_URL=fake_discord.api_url,
        **model_settings(workdir, fake_openai),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, process, log, within=START)
        async with httpx.AsyncClient(base_url=base, timeout=5.0) as client:
            ready = await readyz_until(client, lambda r: r.status_code == 200, within=START)
            assert adapter(ready, "slack") == {
                "state": "connected",
                "ready": True,
                "detail": "Socket Mode",
            }
            assert adapter(ready, "discord")["state"] == "connected"

            mention = mention_event("hold this thought")
            await fake_slack.wait_ack(await fake_slack.send_event(mention))
            await held.until(1)  # a Slack reply is in flight

            await fake_discord.close_for_good(4004)
            unready = await readyz_until(
                client, lambda r: adapter(r, "discord").get("state") == "failed", within=10
            )
        assert unready.status_code == 503
        assert unready.json()["status"] == "not ready"
        assert adapter(unready, "discord") == {
            "state": "failed",
            "ready": False,
            "detail": "the Discord gateway refused DISCORD_BOT_TOKEN",
        }
        assert process.returncode is None, "still draining the Slack reply"
        held.release()
        code = await asyncio.wait_for(process.wait(), timeout=30)
    finally:
        held.release()
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = log.read_text()
    assert code == EXIT_PLATFORM_LOST == 3, text
    assert (
        "parley: discord connection lost for good: the Discord gateway refused "
        "DISCORD_BOT_TOKEN (exit status 3: restart to reconnect)"
    ) in text
    assert "Discord connection lost for good" in text
    assert "Slack: disconnected" in text
    assert fake_slack.thread_texts(CHANNEL, mention["ts"]) == ["You said: Ada: hold this thought"]
    assert "Traceback" not in text
    for secret in (fake_discord.token, fake_slack.bot_token, fake_slack.app_token, OPENAI_KEY):
        assert secret not in text


async def test_a_restart_with_few_session_starts_left_waits_for_the_reset(
    workdir: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeDiscord(shards=2) as fake:
        populate(fake)
        fake.limit_session_starts(remaining=1, reset_after_ms=1500)
        port = free_port()
        log = workdir / "bot.log"
        process = await start_bot(
            workdir,
            log,
            "run",
            PORT=str(port),
            DISCORD_BOT_TOKEN=fake.token,
            DISCORD_API_URL=fake.api_url,
            DISCORD_SHARDED="true",
            **model_settings(workdir, fake_openai),
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(base, process, log, within=START)
            async with httpx.AsyncClient(base_url=base, timeout=5.0) as client:
                ready = await readyz_until(client, lambda r: r.status_code == 200, within=START)
            assert adapter(ready, "discord")["detail"].startswith("2 servers, 2 shards open")
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=30)
        text = log.read_text()
        assert code == 0, text
        identified = [c.identified_at for c in fake.identified()]
        assert len(identified) == 2, "one IDENTIFY per shard"
        asked = fake.limit_asked_at
        assert asked is not None
        assert all(at is not None and at >= asked + 1.5 for at in identified), (
            "both shards identified only after the limit reset"
        )
        assert fake.identifies_over_limit == 0
        assert text.count("Discord session start limit is low") == 1
        assert "1 of 1000 Discord session starts left" in text
        assert "Traceback" not in text
