"""``/agent memory [forget:N|all]`` on Discord, end to end through INTERACTION_CREATE: an
ephemeral reply to the caller alone, about the caller alone, in the guild (or DM) it is used
in. What the command says is tested once in ``tests/bot/commands/test_memory.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.agents import AgentsFile
from memory.base import MemoryScope
from tests.bot.commands.people import Seeder
from tests.support.agents import agents_file, chef, plain
from tests.support.discord_bot import (
    ADA,
    ADA_DM,
    BOB,
    CHEF_ROOM,
    GARDEN,
    GARDEN_CHEF,
    KITCHEN,
    PLAIN_ROOM,
    BotFactory,
)
from tests.support.fake_discord import EPHEMERAL, FakeDiscord

FOOTER = "Forget one: `/agent memory forget N`; all of them: `/agent memory forget all`."
ADA_CHEF = MemoryScope(platform="discord", workspace=str(KITCHEN), person=str(ADA), agent_id="chef")


@pytest.fixture
def seeder(tmp_path: Path) -> Seeder:
    return Seeder(tmp_path / "discord.sqlite3")  # the file start_bot's store uses


def remembering_agents() -> AgentsFile:
    """The world's agents, with the chef remembering people."""
    return agents_file(
        chef(
            bindings={"discord": [str(CHEF_ROOM), str(GARDEN_CHEF)]},
            memory={"extract": "inline"},
        ),
        plain(bindings={"discord": [str(PLAIN_ROOM)]}),
    )


async def private_line(fake: FakeDiscord, channel: int, user: int, **options: str) -> str:
    """``/agent memory`` by ``user`` in ``channel``: its one reply, which only they see."""
    interaction = await fake.slash(channel, user, "memory", **options)
    (reply,) = await fake.wait_for_reply(interaction)
    assert int(reply.get("flags") or 0) & EPHEMERAL, reply
    return str(reply["content"])


async def test_memory_is_registered_with_an_optional_forget(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    await start_bot(agents=remembering_agents())
    put = fake_discord.calls_to("PUT", rf"/applications/{fake_discord.application_id}/commands")
    (group,) = put[-1].body
    memory: dict[str, Any] = next(o for o in group["options"] if o["name"] == "memory")
    (forget,) = memory["options"]
    assert (forget["name"], forget["type"], forget.get("required", False)) == ("forget", 3, False)


async def test_memory_shows_the_caller_only_their_own_in_this_guild(
    start_bot: BotFactory, fake_discord: FakeDiscord, seeder: Seeder
) -> None:
    await seeder.remember(ADA_CHEF, "Is allergic to peanuts", "Says hi to @everyone")
    await seeder.remember(ADA_CHEF.model_copy(update={"person": str(BOB)}), "Bob hates garlic")
    await seeder.remember(ADA_CHEF.model_copy(update={"workspace": str(GARDEN)}), "Grows leeks")
    await start_bot(agents=remembering_agents())

    interaction = await fake_discord.slash(CHEF_ROOM, ADA, "memory")
    (reply,) = await fake_discord.wait_for_reply(interaction)
    assert int(reply["flags"]) & EPHEMERAL
    assert reply["content"] == (
        "What **Chef** remembers about you, newest first:\n"
        "1. Says hi to @everyone\n"
        "2. Is allergic to peanuts\n" + FOOTER
    )
    assert interaction.callbacks[0]["data"]["allowed_mentions"] == {"parse": []}

    assert await private_line(fake_discord, CHEF_ROOM, BOB) == (
        f"What **Chef** remembers about you, newest first:\n1. Bob hates garlic\n{FOOTER}"
    )
    in_garden = await private_line(fake_discord, GARDEN_CHEF, ADA)
    assert in_garden.splitlines()[1:] == ["1. Grows leeks", FOOTER], "another guild, its own"
    assert await private_line(fake_discord, PLAIN_ROOM, ADA) == (
        "**Plain** keeps no memories of people."
    )


async def test_memory_forget_n_and_all(
    start_bot: BotFactory, fake_discord: FakeDiscord, seeder: Seeder
) -> None:
    await seeder.remember(ADA_CHEF, "Has two cats", "Is vegan", "Lives in Lyon")
    await seeder.remember(ADA_CHEF.model_copy(update={"person": str(BOB)}), "Bob hates garlic")
    await start_bot(agents=remembering_agents())

    forgot = await private_line(fake_discord, CHEF_ROOM, ADA, forget="2")
    assert forgot == "Forgotten: “Is vegan”."
    listed = await private_line(fake_discord, CHEF_ROOM, ADA)
    assert listed.splitlines()[1:3] == ["1. Lives in Lyon", "2. Has two cats"]

    assert await private_line(fake_discord, CHEF_ROOM, ADA, forget="5") == (
        "There is no memory 5: `/agent memory` numbers them 1 to 2."
    )
    assert (await private_line(fake_discord, CHEF_ROOM, ADA, forget="first")).startswith(
        "`first` is not a number"
    )

    everything = await private_line(fake_discord, CHEF_ROOM, ADA, forget="ALL")
    assert everything == "Forgotten: all 2 memories about you."
    assert await private_line(fake_discord, CHEF_ROOM, ADA) == (
        "**Chef** remembers nothing about you yet."
    )
    assert "1. Bob hates garlic" in await private_line(fake_discord, CHEF_ROOM, BOB)


async def test_memory_in_a_dm_is_the_dms_own(
    start_bot: BotFactory, fake_discord: FakeDiscord, seeder: Seeder
) -> None:
    """Discord's DMs are a workspace of their own (``dm``): what was learned there is shown
    there, and what was learned in a guild is not."""
    await seeder.remember(
        ADA_CHEF.model_copy(update={"workspace": "dm"}), "Is pregnant", private=True
    )
    await seeder.remember(ADA_CHEF, "Is allergic to peanuts")
    await start_bot(agents=remembering_agents())

    assert await private_line(fake_discord, ADA_DM, ADA) == (
        "What **Chef** remembers about you, newest first:\n"
        f"1. Is pregnant _(from a direct message)_\n{FOOTER}"
    )
