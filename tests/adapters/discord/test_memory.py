"""People memory on Discord, through discord.py against the fake Discord: a fact follows its
teller to another channel of the same guild, never to another guild, another person, or out
of a direct message."""

from __future__ import annotations

from bot.memory import MEMORY_HEADING
from tests.support.agents import agents_file, chef
from tests.support.discord_bot import (
    ADA,
    ADA_DM,
    BOB,
    CHEF_ROOM,
    GARDEN_CHEF,
    LOUNGE,
    BotFactory,
    DiscordBot,
    answer,
)
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI

MEMORY_AGENTS = agents_file(
    chef(
        memory={"extract": "inline"},
        bindings={"discord": [str(CHEF_ROOM), str(GARDEN_CHEF)]},
    )
)


def last_memory(fake_openai: FakeOpenAI) -> str:
    heading = MEMORY_HEADING.split("{name}")[0]
    request = [r for r in fake_openai.chat_requests() if "[parley:" not in r.system_text][-1]
    for message in request.messages:
        content = message.get("content")
        if message.get("role") == "system" and str(content).startswith(heading):
            return str(content)
    return ""


async def say(fake: FakeDiscord, bot: DiscordBot, channel: int, author: int, text: str) -> None:
    mention = "" if channel in (CHEF_ROOM, GARDEN_CHEF, ADA_DM) else f"{bot.mention} "
    await answer(fake, channel, author, f"{mention}{text}")


async def test_a_fact_follows_its_teller_within_the_guild_only(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    bot = await start_bot(agents=MEMORY_AGENTS)
    await say(fake_discord, bot, CHEF_ROOM, ADA, "I am allergic to peanuts.")
    await say(fake_discord, bot, LOUNGE, ADA, "What shall I cook?")
    assert "I am allergic to peanuts." in last_memory(fake_openai), "another channel, same guild"
    await say(fake_discord, bot, LOUNGE, BOB, "What shall I cook?")
    assert last_memory(fake_openai) == "", "never another person's"
    await say(fake_discord, bot, GARDEN_CHEF, ADA, "What shall I cook?")
    assert last_memory(fake_openai) == "", "never in another guild"


async def test_a_fact_told_in_a_direct_message_stays_there(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    bot = await start_bot(agents=MEMORY_AGENTS)
    await say(fake_discord, bot, ADA_DM, ADA, "I am pregnant.")
    await say(fake_discord, bot, CHEF_ROOM, ADA, "Dinner ideas?")
    assert "pregnant" not in last_memory(fake_openai)
    await say(fake_discord, bot, ADA_DM, ADA, "Dinner ideas?")
    assert "I am pregnant." in last_memory(fake_openai)
