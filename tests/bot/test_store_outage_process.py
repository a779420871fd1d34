"""The store down for 10 s in the middle of 100 turns (issue #14): no message is lost, and
every person is answered once the store is back, once, in order in each thread.

``python -m bot run`` talks to MongoDB (SecantusDB) through
:class:`~tests.support.delay_proxy.DelayProxy`, named by ``MONGODB_URI`` as a user would name
any MongoDB; the proxy drops every connection and refuses new ones for 10 s. Slack keeps
sending messages meanwhile. A message the bot cannot record in the journal is not
acknowledged, so the fake Slack sends it again as Slack does (``retry_attempt`` 1..3, on a
schedule shortened from Slack's three seconds, one minute and five minutes); a message
recorded before the outage whose turn it interrupted is retried by the journal once the store
is back, the person told once meanwhile that the bot is catching up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.journal import CATCHING_UP_LINE
from memory.base import PlatformKey
from memory.mongo import MongoStore
from tests.support.delay_proxy import DelayProxy
from tests.support.discord_bot import ADA, KITCHEN
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_slack import FakeSlack, Redelivery
from tests.support.slack_replicas import (
    OPENAI_KEY,
    Replicas,
    ReplicaStarter,
    all_answered,
    answers,
    check_conversation,
    check_stored,
    converse,
    proxied,
    slack_settings,
    threads,
)

THREADS = 20
MESSAGES = 5
OUTAGE = 10.0
BEFORE = 3.0
"""Seconds of talk before the store goes down."""
PAUSE = 2.5
"""Seconds between a person's messages (more when the one before waits to be acknowledged)."""
REDELIVERY = Redelivery(after=(3.0, 8.0, 20.0))


async def started(bots: Replicas, line: str, *, within: float = 60.0) -> None:
    """Until every log of ``bots`` says ``line``."""
    async with asyncio.timeout(within):
        while not all(line in log.read_text() for log in bots.logs):  # noqa: ASYNC110 - another process's log has no event to wait on
            await asyncio.sleep(0.1)


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[ReplicaStarter]:
    async with ReplicaStarter(tmp_path) as start:
        yield start


async def test_no_message_is_lost_while_the_store_is_down_for_10_seconds(
    secantus_uri: str,
    mongo_database: str,
    fake_slack: FakeSlack,
    fake_openai: FakeOpenAI,
    replicas: ReplicaStarter,
) -> None:
    fake_slack.redelivery = REDELIVERY
    host, port = secantus_uri.removeprefix("mongodb://").split(":")
    async with DelayProxy(host, int(port), max_delay=0.02, seed=10) as proxy:
        bot = await replicas(
            1,
            **slack_settings(fake_slack, fake_openai),
            MONGODB_URI=proxied(proxy),
            MONGODB_DB=mongo_database,
        )
        await fake_slack.wait_for(lambda: fake_slack.open_connections == 1, within=60)
        conversations = threads(THREADS, MESSAGES)
        talk = asyncio.gather(
            *(
                converse(fake_slack, thread, first=n * PAUSE / THREADS, pause=PAUSE, within=60)
                for n, thread in enumerate(conversations)
            )
        )
        await asyncio.sleep(BEFORE)
        proxy.go_down()
        down_at = time.monotonic()
        await asyncio.sleep(OUTAGE)
        proxy.come_up()
        up_at = time.monotonic()
        await talk
        await fake_slack.wait_for(lambda: all_answered(fake_slack, conversations), within=60)
        codes = await bot.stop()
    output = bot.output()
    assert codes == [0], output

    first_tries = [e for e in fake_slack.envelopes if e.retry_attempt == 0]
    during = [e for e in first_tries if down_at <= e.sent_at < up_at]
    assert len(during) >= THREADS, "people kept writing while the store was down"
    assert any(e.acked_at is None for e in during), "some were not acknowledged, so..."
    assert any(e.retry_attempt for e in fake_slack.envelopes), "...Slack sent them again"
    assert proxy.refused > 0, "the bot tried the store while it was down"

    for thread in conversations:
        shown = fake_slack.thread(thread.channel, thread.root)
        assert not any(m.streaming for m in shown)
        replies = [m.text for m in shown if m.text != CATCHING_UP_LINE]
        assert replies == thread.replies, thread.channel
        assert len(shown) - len(replies) <= len(thread.texts), "told once a message at most"
    assert answers(fake_openai) >= THREADS * MESSAGES
    assert OPENAI_KEY not in output
    assert "Slack event not acknowledged" in output
    assert "Traceback" not in output, "expected failures are one line each"

    store = MongoStore(uri=secantus_uri, database=mongo_database)
    await store.open()
    try:
        assert await store.journal_backlog() == 0
        for thread in conversations:
            await check_stored(store, thread, attempts=None)
    finally:
        await store.close()


async def say_in_turn(
    fake: FakeDiscord, channel: int, texts: list[str], *, first: float, pause: float
) -> None:
    """A person writes ``texts`` in ``channel``, mentioning the bot, ``pause`` seconds apart."""
    await asyncio.sleep(first)
    for text in texts:
        await fake.say(channel, ADA, f"<@{fake.bot['id']}> {text}")
        await asyncio.sleep(pause)


def discord_replies(fake: FakeDiscord, channel: int) -> list[str]:
    return [str(m["content"]) for m in fake.bot_messages(channel)]


async def test_discord_holds_messages_while_the_store_is_down(
    secantus_uri: str,
    mongo_database: str,
    fake_discord: FakeDiscord,
    fake_openai: FakeOpenAI,
    replicas: ReplicaStarter,
) -> None:
    """Discord never sends a message again: the adapter holds each one until the store takes
    it (the later ones of its channel behind it, so the order holds), telling the person
    once."""
    channels = [850000000000000000 + n for n in range(THREADS)]
    for n, channel in enumerate(channels):
        fake_discord.add_text_channel(KITCHEN, channel, f"room-{n}")
    conversations = threads(THREADS, MESSAGES)
    host, port = secantus_uri.removeprefix("mongodb://").split(":")
    async with DelayProxy(host, int(port), max_delay=0.02, seed=11) as proxy:
        bot = await replicas(
            1,
            DISCORD_BOT_TOKEN=fake_discord.token,
            DISCORD_API_URL=fake_discord.api_url,
            OPENAI_BASE_URL=fake_openai.base_url,
            OPENAI_API_KEY=OPENAI_KEY,
            OPENAI_MAX_RETRIES="0",
            API_ENABLED="false",
            MONGODB_URI=proxied(proxy),
            MONGODB_DB=mongo_database,
        )
        await started(bot, "discord adapter started")
        talk = asyncio.gather(
            *(
                say_in_turn(
                    fake_discord, channel, thread.texts, first=n * PAUSE / THREADS, pause=PAUSE
                )
                for n, (channel, thread) in enumerate(zip(channels, conversations, strict=True))
            )
        )
        await asyncio.sleep(BEFORE)
        proxy.go_down()
        await asyncio.sleep(OUTAGE)
        proxy.come_up()
        await talk

        def answered() -> bool:
            return all(
                thread.replies[-1] in discord_replies(fake_discord, channel)
                for channel, thread in zip(channels, conversations, strict=True)
            )

        await fake_discord.wait_for(lambda: answered() or None, within=60)
        codes = await bot.stop()
    output = bot.output()
    assert codes == [0], output
    assert "waits for the store" in output, "messages arrived while the store was down"
    assert proxy.refused > 0
    for channel, thread in zip(channels, conversations, strict=True):
        shown = discord_replies(fake_discord, channel)
        replies = [text for text in shown if text != CATCHING_UP_LINE]
        assert replies == thread.replies, (channel, shown)
        assert len(shown) - len(replies) <= len(thread.texts), "told once a message at most"
    assert "Traceback" not in output
    assert OPENAI_KEY not in output

    store = MongoStore(uri=secantus_uri, database=mongo_database)
    await store.open()
    try:
        assert await store.journal_backlog() == 0
        for channel, thread in zip(channels, conversations, strict=True):
            key = PlatformKey(platform="discord", workspace=str(KITCHEN), channel=str(channel))
            await check_conversation(store, key, thread)
    finally:
        await store.close()
