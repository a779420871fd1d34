"""The ``/agent`` commands are registered with Discord only when their definition changed
(``DISCORD_COMMAND_SYNC=auto``), by one process, the hash of the registration kept in the
store; ``always`` and ``never`` as they say. Counted as Discord's bulk overwrites on the fake."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.discord.commands import command_tree
from adapters.discord.discordpy import discord
from adapters.discord.sync import fingerprint, record_name
from tests.support.discord_bot import BotFactory, DiscordBot
from tests.support.fake_discord import Call, FakeDiscord


def overwrites(fake: FakeDiscord) -> list[Call]:
    return fake.calls_to("PUT", rf"/applications/{fake.application_id}/commands")


async def restart(bot: DiscordBot, start_bot: BotFactory, **settings: object) -> DiscordBot:
    """Stop ``bot`` and start another on the same store (the same SQLite file)."""
    await bot.stop()
    return await start_bot(**settings)


async def test_an_unchanged_tree_is_registered_once_across_two_starts(
    start_bot: BotFactory, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    first = await start_bot()
    assert len(overwrites(fake_discord)) == 1
    stored = await first.store.get_value(name=record_name(fake_discord.application_id))
    assert stored is not None
    assert len(stored) == 64

    with caplog.at_level(logging.INFO, logger="adapters.discord.sync"):
        second = await restart(first, start_bot)
    assert len(overwrites(fake_discord)) == 1, "the second start did not register again"
    assert "registered and unchanged" in caplog.text
    assert second.adapter.health().state == "connected"


async def test_a_changed_definition_is_registered_again(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    first = await start_bot()
    name = record_name(fake_discord.application_id)
    registered = await first.store.get_value(name=name)
    await first.store.set_value(name=name, value="0" * 64)  # an older release's commands

    second = await restart(first, start_bot)
    assert len(overwrites(fake_discord)) == 2
    assert await second.store.get_value(name=name) == registered


async def test_always_registers_at_every_start(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    first = await start_bot(discord_command_sync="always")
    await restart(first, start_bot, discord_command_sync="always")
    assert len(overwrites(fake_discord)) == 2


async def test_never_leaves_the_commands_alone(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot(discord_command_sync="never")
    assert overwrites(fake_discord) == []
    assert await bot.store.get_value(name=record_name(fake_discord.application_id)) is None
    assert bot.adapter.health().state == "connected"


async def test_a_refused_registration_is_tried_again_at_the_next_start(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    fake_discord.fail("PUT", rf"/applications/{fake_discord.application_id}/commands")
    first = await start_bot()
    assert [call.status for call in overwrites(fake_discord)] == [403]
    assert first.adapter.health().state == "connected", "people can still talk to the agents"
    assert await first.store.get_value(name=record_name(fake_discord.application_id)) is None

    await restart(first, start_bot)
    assert [call.status for call in overwrites(fake_discord)] == [403, 200]


async def test_two_processes_starting_together_register_once(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    one = await start_bot(start=False)
    two = await start_bot(start=False)
    await asyncio.gather(one.adapter.start(), two.adapter.start())
    assert len(overwrites(fake_discord)) == 1


async def test_the_fingerprint_follows_the_definition_sent_to_discord(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(start=False)
    client = discord.Client(intents=discord.Intents.none())
    tree = command_tree(client, bot.engine)
    again = command_tree(discord.Client(intents=discord.Intents.none()), bot.engine)
    assert fingerprint(tree) == fingerprint(again)

    @discord.app_commands.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None: ...

    again.add_command(ping)
    assert fingerprint(tree) != fingerprint(again)
