"""Replies in Discord under pressure (issue #14), end to end: the unmodified discord.py client
against the fake Discord, a real engine and store, the fake model streaming slowly.

* All replies in a channel share one budget of posts, edits and deletes: rates are read from
  the fake's recorded call times, never by sleeping.
* A reply whose edits Discord rate-limits past discord.py's own retries, or refuses, is shown
  in full from the stored text, never left truncated beside an error line.

The budget here is Discord's five calls in five seconds, ten times faster, so that ten replies
take seconds; :mod:`tests.adapters.test_channel_budget` holds the published limit itself.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.base import FAILURE_LINE
from adapters.channel_budget import ChannelLimit
from adapters.discord import DiscordAdapter
from bot.engine import Engine
from bot.llm import OpenAIModelClient
from bot.tokens import TokenCounter
from config.settings import Settings
from memory.sqlite import SqliteStore
from tests.support.discord_bot import ADA, PLAIN_ROOM, DiscordBot, world_agents
from tests.support.fake_discord import Call, FakeDiscord
from tests.support.fake_openai import (
    FakeOpenAI,
    answer_for,
    slow_model,
)

LIMIT = ChannelLimit(calls=5, per=0.5)
"""Discord's five calls in any five seconds, ten times faster."""
MESSAGE_CALLS = rf"/channels/{PLAIN_ROOM}/messages(/\d+)?"
WAIT = 20.0

Start = Callable[..., Awaitable[DiscordBot]]


@pytest.fixture
async def start(
    fake_discord: FakeDiscord,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
) -> AsyncIterator[Start]:
    """The bot wired as ``tests.support.discord_bot`` wires it, with the adapter's channel
    budget given, and room for ten waiting turns in one channel's conversation."""
    bots: list[DiscordBot] = []

    async def started(*, channel_limit: ChannelLimit | None = None) -> DiscordBot:
        store = SqliteStore(path=tmp_path / "discord.sqlite3")
        await store.open()
        model = OpenAIModelClient(
            api_key="sk-test", base_url=fake_openai.base_url, timeout=10, max_retries=0
        )
        engine = Engine(
            store=store,
            agents=world_agents(),
            model=model,
            tokens=TokenCounter(),
            default_model="gpt-4o-mini",
            max_queued_per_conversation=20,
        )
        adapter = DiscordAdapter(
            settings=Settings(
                _env_file=None,  # type: ignore[call-arg]
                discord_bot_token=fake_discord.token,
                discord_api_url=fake_discord.api_url,
            ),
            engine=engine,
            edit_interval=0.05,
            channel_limit=channel_limit,
            ready_timeout=30.0,
            guild_ready_timeout=0.1,
        )
        bot = DiscordBot(
            fake=fake_discord, adapter=adapter, engine=engine, store=store, model=model
        )
        bots.append(bot)
        await adapter.start()
        return bot

    yield started
    for bot in reversed(bots):
        await bot.stop()


async def stored_replies(bot: DiscordBot) -> dict[str, str]:
    """The stored reply to each person's message (by the message's Discord id)."""
    conversation = await bot.conversation(
        int(bot.fake.channels[PLAIN_ROOM]["guild_id"]), PLAIN_ROOM
    )
    if conversation is None:
        return {}
    messages = await bot.store.list_messages(conversation_id=conversation.id)
    replies: dict[str, str] = {}
    for asked, answered in itertools.pairwise(messages):
        if asked.role == "user" and answered.role == "assistant" and asked.platform_message_id:
            replies[asked.platform_message_id] = answered.text
    return replies


def shown_replies(fake: FakeDiscord) -> dict[str, list[str]]:
    """What the bot shows in reply to each person's message."""
    shown: dict[str, list[str]] = {}
    for message in fake.bot_messages(PLAIN_ROOM):
        asked = (message.get("message_reference") or {}).get("message_id", "")
        shown.setdefault(asked, []).append(message["content"])
    return shown


async def all_shown(bot: DiscordBot, asked: list[dict[str, Any]]) -> dict[str, str]:
    """Wait until each asked message's stored reply is what the channel shows for it."""
    ids = [message["id"] for message in asked]
    async with asyncio.timeout(WAIT):
        while True:
            stored = await stored_replies(bot)
            shown = shown_replies(bot.fake)
            if all(i in stored and shown.get(i) == [stored[i]] for i in ids):
                return stored
            await asyncio.sleep(0.05)


def most_in_any_window(calls: list[Call], window: float) -> int:
    moments = sorted(call.at for call in calls)
    return max(
        (
            sum(1 for later in moments[i:] if later - start < window)
            for i, start in enumerate(moments)
        ),
        default=0,
    )


def message_calls(fake: FakeDiscord) -> list[Call]:
    return [
        call
        for call in fake.calls
        if call.method in {"POST", "PATCH", "DELETE"}
        and re.fullmatch(MESSAGE_CALLS, call.path) is not None
    ]


# one budget per channel ------------------------------------------------------------------


async def test_ten_concurrent_replies_in_one_channel_stay_within_its_budget(
    start: Start, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    slow_model(fake_openai, chunk_delay=0.01)
    bot = await start(channel_limit=LIMIT)

    asked = [await fake_discord.say(PLAIN_ROOM, ADA, f"tell me about topic{n}") for n in range(10)]
    stored = await all_shown(bot, asked)

    for n, message in enumerate(asked):
        assert stored[message["id"]] == answer_for(f"topic{n}"), "every reply ends complete"
    calls = message_calls(fake_discord)
    assert most_in_any_window(calls, LIMIT.per) <= LIMIT.calls, [c.at for c in calls]
    assert FAILURE_LINE not in [m["content"] for m in fake_discord.bot_messages(PLAIN_ROOM)]


# shown in full or told -------------------------------------------------------------------


async def test_edits_rate_limited_past_discord_pys_retries_end_with_the_whole_reply(
    start: Start, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    """discord.py tries a request five times, waiting out each 429; then it raises, and the
    person saw a truncated reply and "Something went wrong" although the reply was stored."""
    slow_model(fake_openai, chunk_delay=0.04)
    bot = await start(channel_limit=LIMIT)
    retry_after = 0.2
    fake_discord.rate_limit(
        "PATCH", rf"/channels/{PLAIN_ROOM}/messages/\d+", retry_after=retry_after, times=5
    )

    asked = await fake_discord.say(PLAIN_ROOM, ADA, "tell me about topic4")
    stored = await all_shown(bot, [asked])

    assert stored[asked["id"]] == answer_for("topic4")
    assert FAILURE_LINE not in [m["content"] for m in fake_discord.bot_messages(PLAIN_ROOM)]
    calls = message_calls(fake_discord)
    limited = [call for call in calls if call.status == 429]
    assert len(limited) == 5
    for refused in limited:
        after = [call.at - refused.at for call in calls if call.at > refused.at]
        assert all(gap >= retry_after for gap in after), "nothing went before Retry-After"
    assert calls[-1].method == "PATCH"
    assert calls[-1].status == 200


async def test_a_reply_whose_edits_are_refused_is_posted_afresh_in_full(
    start: Start, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    slow_model(fake_openai)
    bot = await start(channel_limit=LIMIT)
    fake_discord.fail("PATCH", rf"/channels/{PLAIN_ROOM}/messages/\d+", times=100)

    asked = await fake_discord.say(PLAIN_ROOM, ADA, "tell me about topic8")
    stored = await all_shown(bot, [asked])

    assert stored[asked["id"]] == answer_for("topic8")
    contents = [m["content"] for m in fake_discord.bot_messages(PLAIN_ROOM)]
    assert contents == [answer_for("topic8")], "the truncated message was removed"
    assert len(fake_discord.calls_to("DELETE", rf"/channels/{PLAIN_ROOM}/messages/\d+")) == 1
