"""``python -m bot run`` as a user runs it: a plain process configured by environment variables,
in Socket Mode against the fake Slack and the fake OpenAI server (both in the test's loop),
stopped with SIGTERM. Two runs over one data folder: the conversation outlives the process."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_slack import FakeSlack, mention_event, message_event
from tests.support.process import REPO, bot_environment
from tests.support.slack_bot import CHANNEL

OPENAI_KEY = "sk-process-secret-openai-key"
START = 60.0
"""Seconds for a fresh interpreter to import everything and connect (slow CI machines)."""


def replies_done(fake: FakeSlack, thread: str) -> list[str] | None:
    messages = fake.thread(CHANNEL, thread)
    if messages and not any(message.streaming for message in messages):
        return [message.text for message in messages]
    return None


async def run_once(
    workdir: Path, fake: FakeSlack, env: dict[str, str], event: dict[str, Any], replies: int
) -> tuple[int, str, list[str]]:
    """Start the bot, send ``event`` once it is connected, wait for the thread to hold
    ``replies`` finished replies, then SIGTERM it. Returns exit code, stderr, the thread."""
    connected_before = fake.connections
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=workdir,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    try:
        await fake.wait_connected(count=connected_before + 1, within=START)
        await fake.wait_ack(await fake.send_event(event))
        thread = event.get("thread_ts") or event["ts"]
        shown = await fake.wait_for(
            lambda: done if (done := replies_done(fake, thread)) and len(done) >= replies else None,
            within=START,
        )
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return code, (await errors).decode(), shown


async def test_python_m_bot_run_in_socket_mode(
    tmp_path: Path, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    env = bot_environment(
        tmp_path,
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_APP_TOKEN=fake_slack.app_token,
        SLACK_API_URL=fake_slack.api_url.rstrip("/"),  # works without the trailing slash
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY=OPENAI_KEY,
        OPENAI_MAX_RETRIES="0",
        BOT_DATA_DIR=str(tmp_path / "data"),
        LOG_LEVEL="INFO",
    )
    mention = mention_event("my name is Bob")

    code, errors, shown = await run_once(tmp_path, fake_slack, env, mention, replies=1)
    assert code == 0, errors
    assert shown == ["You said: Ada: my name is Bob"]
    assert fake_slack.open_connections == 0, "the websocket was closed on the way out"

    follow_up = message_event("what's my name?", thread_ts=mention["ts"])
    code, more_errors, shown = await run_once(tmp_path, fake_slack, env, follow_up, replies=2)
    assert code == 0, more_errors
    assert shown[-1] == "Your name is Bob.", "remembered across the restart"

    for log in (errors, more_errors):
        assert "slack adapter started" in log
        assert "Traceback" not in log
        assert "Slack: disconnected" in log
        noises = (
            "Task was destroyed",
            "Unclosed",
            "never awaited",
            "Error",
            "ERROR",
            "As you gave",
        )
        for noise in noises:
            assert noise not in log, log
        for secret in (fake_slack.bot_token, fake_slack.app_token, OPENAI_KEY):
            assert secret not in log
