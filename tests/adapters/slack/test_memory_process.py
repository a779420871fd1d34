"""People memory as a user runs it: ``python -m bot run`` in Socket Mode against the fake
Slack and the fake OpenAI server, configured by environment variables only, on SQLite and on
MongoDB (SecantusDB). A fact Ada tells in one thread is given to the model in her next thread,
and never in Olu's; what people see never holds the memory field."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
import yaml

from bot.memory import MEMORY_HEADING
from config.agents import MEMORY_FIELD
from tests.support.fake_openai import FakeOpenAI, RecordedRequest
from tests.support.fake_slack import FakeSlack, mention_event
from tests.support.process import bot_environment
from tests.support.slack_bot import CHANNEL

START = 60.0

AGENTS = {
    "agents": [
        {
            "id": "chef",
            "name": "Chef",
            "context": "You are a Mediterranean chef.",
            "first_message": "Hello, what shall we cook?",
            "memory": {"extract": "inline"},
        }
    ]
}


def memory_in(request: RecordedRequest) -> str:
    heading = MEMORY_HEADING.split("{name}")[0]
    for message in request.messages:
        content = message.get("content")
        if message.get("role") == "system" and str(content).startswith(heading):
            return str(content)
    return ""


async def said(fake: FakeSlack, fake_openai: FakeOpenAI, text: str, user: str) -> tuple[str, str]:
    """Mention the bot in a new thread; the reply shown there and the memory its prompt had."""
    asked = len(fake_openai.chat_requests())
    event = mention_event(text, user=user)
    await fake.wait_ack(await fake.send_event(event))

    def shown() -> str | None:
        messages = fake.thread(CHANNEL, event["ts"])
        finished = [m for m in messages if not m.streaming]
        return finished[-1].text if finished else None

    reply = await fake.wait_for(shown, within=START)
    requests = [r for r in fake_openai.chat_requests()[asked:] if "[parley:" not in r.system_text]
    return reply, memory_in(requests[-1])


@pytest.mark.parametrize("store", ["sqlite", "mongo"])
async def test_a_fact_told_in_one_thread_follows_its_teller_only(
    tmp_path: Path,
    fake_slack: FakeSlack,
    fake_openai: FakeOpenAI,
    store: str,
    request: pytest.FixtureRequest,
) -> None:
    (tmp_path / "agents.yaml").write_text(yaml.safe_dump(AGENTS))
    where: dict[str, str] = {
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "EMBEDDING_MODEL": "fake-embed",
    }
    if store == "mongo":
        uri: str = request.getfixturevalue("secantus_uri")
        database: str = request.getfixturevalue("mongo_database")
        where = {"MONGODB_URI": uri, "MONGODB_DB": database}  # and no embeddings model
    env = bot_environment(
        tmp_path,
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_APP_TOKEN=fake_slack.app_token,
        SLACK_API_URL=fake_slack.api_url,
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-memory-process",
        OPENAI_MAX_RETRIES="0",
        **where,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    try:
        await fake_slack.wait_connected(count=1, within=START)
        told, before = await said(fake_slack, fake_openai, "I am allergic to peanuts.", "U0ADA")
        assert before == ""
        assert told == "You said: Ada: I am allergic to peanuts."
        assert MEMORY_FIELD not in told

        _, adas = await said(fake_slack, fake_openai, "What shall I cook?", "U0ADA")
        assert "- I am allergic to peanuts." in adas, "used in her next thread"

        _, olus = await said(fake_slack, fake_openai, "What shall I cook?", "U0OLU")
        assert olus == "", "never in another person's"
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    log = (await errors).decode()
    assert code == 0, log
    assert "Traceback" not in log
    embedded = fake_openai.embedding_requests()
    if "EMBEDDING_MODEL" in where:  # the fact and every question, through the settings alone
        assert embedded
        assert all(r.body["model"] == "fake-embed" for r in embedded)
        assert all(r.headers["authorization"] == "Bearer sk-memory-process" for r in embedded)
    else:
        assert embedded == []
