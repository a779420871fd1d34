"""Where a Discord message belongs, and which channels are bound to an agent.

A conversation is keyed by (guild id, or ``dm``, and channel id); a thread is a channel of its
own, so it holds its own conversation, and guilds never share one.

Parley answers a message from a person when it is

* a direct message;
* in a channel **bound** to an agent, which is a channel listed in an agent's
  ``bindings.discord`` in the agents file or bound with ``/agent use`` (stored per guild). A
  thread counts as bound when it is bound itself or its parent channel is;
* in a thread Parley opened (``/agent start``, or a mention with
  ``DISCORD_THREAD_ON_MENTION``): the conversation lives there;
* anywhere else, only when it mentions the bot by name (``<@bot>``; ``@everyone``, ``@here``
  and roles do not count) or replies to one of the bot's messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from adapters.discord.discordpy import discord
from bot.engine import Engine
from config.agents import Agent
from memory.base import DISCORD_DM_WORKSPACE as DM_WORKSPACE
from memory.base import PlatformKey

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Place:
    """A channel as far as conversations care: its guild, and for a thread its parent and owner."""

    guild_id: int | None
    channel_id: int
    parent_id: int | None = None
    thread_owner_id: int | None = None
    can_start_threads: bool = False
    """A guild text channel, where a thread can be started from a message."""

    @property
    def is_dm(self) -> bool:
        return self.guild_id is None

    @property
    def workspace(self) -> str:
        return DM_WORKSPACE if self.guild_id is None else str(self.guild_id)

    @property
    def key(self) -> PlatformKey:
        return key_for(self.guild_id, self.channel_id)

    def opened_by(self, user_id: int) -> bool:
        """A thread this user owns (for the bot: a thread Parley opened)."""
        return self.thread_owner_id == user_id


def key_for(guild_id: int | None, channel_id: int) -> PlatformKey:
    workspace = DM_WORKSPACE if guild_id is None else str(guild_id)
    return PlatformKey(platform="discord", workspace=workspace, channel=str(channel_id))


def place_of_channel(channel: object, guild_id: int | None) -> Place:
    """The place of a known channel object (guild channels, threads, DMs)."""
    if isinstance(channel, discord.DMChannel | discord.GroupChannel) or guild_id is None:
        return Place(guild_id=None, channel_id=_channel_id(channel))
    if isinstance(channel, discord.Thread):
        return Place(
            guild_id=guild_id,
            channel_id=channel.id,
            parent_id=channel.parent_id,
            thread_owner_id=channel.owner_id,
        )
    return Place(
        guild_id=guild_id,
        channel_id=_channel_id(channel),
        can_start_threads=isinstance(channel, discord.TextChannel),
    )


def _channel_id(channel: object) -> int:
    value = getattr(channel, "id", None)
    if not isinstance(value, int):
        raise TypeError(f"not a channel: {channel!r}")
    return value


async def place_of(message: discord.Message, client: discord.Client) -> Place:
    """Where the message was written. A channel discord.py has not cached (a thread it has not
    seen yet) is looked up with ``GET /channels/{id}``."""
    channel = message.channel
    guild = message.guild
    if not isinstance(channel, discord.PartialMessageable):
        return place_of_channel(channel, guild.id if guild is not None else None)
    guild_id = guild.id if guild is not None else channel.guild_id
    if guild_id is None:
        return Place(guild_id=None, channel_id=channel.id)
    found: object | None = guild.get_channel_or_thread(channel.id) if guild is not None else None
    if found is None:
        try:
            found = await client.fetch_channel(channel.id)
        except discord.HTTPException as exc:
            logger.debug("channel %s could not be looked up: %s", channel.id, exc)
            return Place(guild_id=guild_id, channel_id=channel.id)
    return place_of_channel(found, guild_id)


async def bound_agent(engine: Engine, place: Place) -> Agent | None:
    """The agent a channel (or a thread's parent) is bound to; None when it is not bound.

    Unlike :meth:`Engine.agent_for_channel`, which falls back to the default agent, this tells
    a bound channel from an unbound one. A binding stored with ``/agent use`` wins over the
    agents file, as in the engine.
    """
    if place.is_dm:
        return None
    for channel in (place.channel_id, place.parent_id):
        if channel is None:
            continue
        agent = await _bound_to(engine, place.workspace, str(channel))
        if agent is not None:
            return agent
    return None


async def _bound_to(engine: Engine, workspace: str, channel: str) -> Agent | None:
    stored = await engine.store.channel_agent(
        platform="discord", workspace=workspace, channel=channel
    )
    if stored is not None:
        agent = engine.agents.find(stored)
        if agent is not None:
            return agent
    for agent in engine.agents.agents:
        if channel in agent.bindings.discord:
            return agent
    return None
