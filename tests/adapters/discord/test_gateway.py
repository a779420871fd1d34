"""Connecting to Discord: settings alone point discord.py at the fakes (REST base, gateway from
``GET /gateway/bot``, resumes at ``resume_gateway_url``, re-identifies at the default gateway);
sharding; clear errors for a wrong token or a missing intent; discord.py's own rate limiting;
no secret in logs; and ``python -m bot run`` as a process, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
from pathlib import Path

import aiohttp
import pytest

from adapters.discord.discordpy import discord
from bot.errors import ParleyError
from tests.support.discord_bot import (
    ADA,
    ADA_DM,
    CHEF_ROOM,
    GARDEN_CHEF,
    LOUNGE,
    BotFactory,
    DiscordBot,
    answer,
    populate,
)
from tests.support.fake_discord import MESSAGE_CONTENT_INTENT, FakeDiscord, without_content
from tests.support.fake_openai import FakeOpenAI
from tests.support.process import start_bot

REPO = Path(__file__).resolve().parents[3]
GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES = 1 << 0, 1 << 9, 1 << 12


async def say_and_wait(fake: FakeDiscord, channel_id: int, text: str) -> str:
    """Ada speaks in a bound channel; returns the complete answer."""
    expect = f"You said: Ada: {text}"
    await fake.say(channel_id, ADA, text)
    await fake.wait_for(
        lambda: any(m["content"] == expect for m in fake.bot_messages(channel_id)), within=30
    )
    return expect


async def test_settings_point_discord_py_at_the_api_and_its_gateway(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    assert fake_discord.api_url == discord.http.Route.BASE
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake_discord.gateway_url

    first = [(call.method, call.path) for call in fake_discord.calls[:3]]
    assert first == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
        ("GET", "/gateway/bot"),
    ]
    (connection,) = fake_discord.connections
    assert connection.path == "/gateway"
    assert connection.query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    assert connection.compressor is not None, "frames went out zlib-compressed, as asked"
    identify = next(p["d"] for p in connection.received if p["op"] == 2)
    wanted = GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT_INTENT
    assert identify["intents"] & wanted == wanted
    assert 1 in connection.ops, "heartbeats are sent (and acknowledged)"

    await say_and_wait(fake_discord, CHEF_ROOM, "hello")
    assert [c for c in fake_discord.calls if c.status == 404] == [], "no route the fake lacks"

    await bot.stop()
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
    assert connection.ws.closed


async def test_a_resume_goes_to_the_resume_gateway_url(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    await start_bot()
    await say_and_wait(fake_discord, CHEF_ROOM, "before the reconnect")
    await fake_discord.reconnect()
    resumed = await fake_discord.wait_for(
        lambda: [c for c in fake_discord.connections if c.path == "/resume" and 6 in c.ops]
    )
    assert 2 not in resumed[0].ops, "resumed, not identified again"
    await say_and_wait(fake_discord, CHEF_ROOM, "after the reconnect")
    assert len(fake_discord.identified()) == 2, "one connection, then its resumption"


async def test_an_invalidated_session_identifies_again_at_the_default_gateway(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    await start_bot()
    await fake_discord.invalidate_session()
    # discord.py waits five seconds before identifying again
    await fake_discord.wait_for(
        lambda: [c for c in fake_discord.connections[1:] if c.path == "/gateway" and 2 in c.ops],
        within=30,
    )
    await say_and_wait(fake_discord, CHEF_ROOM, "after a new session")


async def test_automatic_sharding(start_bot: BotFactory) -> None:
    async with FakeDiscord(shards=2) as fake:
        populate(fake)
        bot = await start_bot(fake=fake, discord_sharded=True)
        try:
            shards = sorted(
                next(p["d"]["shard"] for p in c.received if p["op"] == 2) for c in fake.identified()
            )
            assert shards == [[0, 2], [1, 2]]
            await say_and_wait(fake, CHEF_ROOM, "to the kitchen, shard 0")
            await say_and_wait(fake, GARDEN_CHEF, "to the garden, shard 1")
        finally:
            await bot.stop()


async def test_a_wrong_token_is_refused_in_one_clear_line(start_bot: BotFactory) -> None:
    with pytest.raises(ParleyError) as refused:
        await start_bot(token="not-the-right-token")
    message = str(refused.value)
    assert message.startswith("Discord refused DISCORD_BOT_TOKEN")
    assert "not-the-right-token" not in message
    assert discord.http.Route.BASE == "https://discord.com/api/v10", "endpoints restored"


async def test_without_the_message_content_intent_mentions_and_dms_are_answered(
    start_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDiscord(message_content_intent=False) as fake:
        populate(fake)
        with caplog.at_level(logging.WARNING, logger="adapters.discord.adapter"):
            bot = await start_bot(fake=fake)
        assert "Discord refused the Message Content intent" in caplog.text
        try:
            await _answers_mentions_and_dms_only(fake, bot)
        finally:
            await bot.stop()


async def _answers_mentions_and_dms_only(fake: FakeDiscord, bot: DiscordBot) -> None:
    refused, *_, accepted = fake.connections
    asked = next(p["d"] for p in refused.received if p["op"] == 2)
    assert asked["intents"] & MESSAGE_CONTENT_INTENT, "asked for it first"
    assert refused.session is None, "and was refused"
    identify = next(p["d"] for p in accepted.received if p["op"] == 2)
    assert not identify["intents"] & MESSAGE_CONTENT_INTENT
    wanted = GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES
    assert identify["intents"] & wanted == wanted
    health = bot.adapter.health()
    assert health.state == "connected"
    assert "mentions and DMs only" in health.detail

    await fake.say(CHEF_ROOM, ADA, "no mention in a bound channel")  # arrives blank
    await answer(
        fake, CHEF_ROOM, ADA, f"{bot.mention} a mention", expect="You said: Ada: a mention"
    )
    posted = fake.calls_to("POST", rf"/channels/{CHEF_ROOM}/messages")
    assert len(posted) == 1, [call.body["content"] for call in posted]
    await answer(fake, ADA_DM, ADA, "a direct message", expect="You said: Ada: a direct message")
    await answer(
        fake, LOUNGE, ADA, f"{bot.mention} in the lounge", expect="You said: Ada: in the lounge"
    )


async def test_a_session_without_the_intent_gets_content_only_where_discord_sends_it(
    fake_discord: FakeDiscord,
) -> None:
    bot_id = int(fake_discord.bot["id"])
    plain = await fake_discord.say(LOUNGE, ADA, "hello")
    assert without_content(plain, bot_id)["content"] == ""
    mention = await fake_discord.say(LOUNGE, ADA, f"<@{bot_id}> hello")
    assert without_content(mention, bot_id) == mention
    direct = await fake_discord.say(ADA_DM, ADA, "hello")
    assert without_content(direct, bot_id) == direct


async def test_rate_limits_are_left_to_discord_py(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    await start_bot()
    fake_discord.rate_limit("POST", rf"/channels/{CHEF_ROOM}/messages", retry_after=0.05)
    await say_and_wait(fake_discord, CHEF_ROOM, "hello despite the limit")
    posts = fake_discord.calls_to("POST", rf"/channels/{CHEF_ROOM}/messages")
    assert [call.status for call in posts] == [429, 200], "discord.py waited and retried"
    assert len(fake_discord.bot_messages(CHEF_ROOM)) == 1


async def test_the_token_never_reaches_the_logs(
    start_bot: BotFactory, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start_bot()
    await say_and_wait(fake_discord, CHEF_ROOM, "hello")
    await fake_discord.slash(CHEF_ROOM, ADA, "list")
    await fake_discord.wait_for(lambda: fake_discord.calls_to("POST", r"/interactions/.*"))
    await bot.stop()
    assert fake_discord.token not in caplog.text
    assert fake_discord.token not in repr(bot.adapter)


async def test_the_fake_answers_like_discord(fake_discord: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake_discord.api_url}/users/@me") as response:
            assert response.status == 401
            assert response.headers["Content-Type"] == "application/json"
        headers = {"Authorization": f"Bot {fake_discord.token}"}
        async with session.get(
            f"{fake_discord.api_url}/no/such/route", headers=headers
        ) as response:
            assert response.status == 404
            assert await response.json() == {"message": "404: Not Found", "code": 0}
    assert [(c.path, c.status) for c in fake_discord.calls] == [
        ("/users/@me", 401),
        ("/no/such/route", 404),
    ]


async def test_python_m_bot_run_answers_in_discord_and_stops_on_sigterm(
    tmp_path: Path, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    log = tmp_path / "bot.log"
    process = await start_bot(
        tmp_path,
        log,
        "run",
        DISCORD_BOT_TOKEN=fake_discord.token,
        DISCORD_API_URL=fake_discord.api_url,
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-discord-run-secret",
        OPENAI_MAX_RETRIES="0",
        BOT_DATA_DIR=str(tmp_path / "data"),
        LOG_LEVEL="DEBUG",
    )
    try:
        await fake_discord.wait_for(fake_discord.identified, within=60)
        bot = fake_discord.bot["id"]
        await fake_discord.say(LOUNGE, ADA, f"<@{bot}> Hi, I'm Ada. Any soup ideas?")
        await fake_discord.wait_for(
            lambda: [
                m
                for m in fake_discord.bot_messages(LOUNGE)
                if m["content"] == "You said: Ada: Hi, I'm Ada. Any soup ideas?"
            ],
            within=60,
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=60)
    text = log.read_text()
    assert code == 0, text
    tracebacks = text.split("Traceback (most recent call last):")[1:]
    assert not [t for t in tracebacks if "discord" in t.split("\n2")[0]], text
    assert "adapters.discord.adapter: could not" not in text
    assert fake_discord.token not in text
    assert "sk-discord-run-secret" not in text
    (connection,) = fake_discord.connections
    assert connection.ws.closed, "disconnected on SIGTERM"
