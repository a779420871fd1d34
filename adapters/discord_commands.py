"""The ``/agent`` slash commands: list, use, start, reset, summary, export, forget.

Each command works on the conversation of the channel (or thread, or DM) it is used in: the
same key messages use, so one guild never reaches another's conversations. A command that
cannot run (no conversation, no permission, an unknown agent) raises :class:`Refused`; the
tree answers it, and any other failure, with one ephemeral line. Slow work (goal checks,
exports, opening threads) is deferred first, inside Discord's three seconds.

Discord applies ``default_member_permissions`` to whole top-level commands only (discord.py
ignores ``default_permissions`` on subcommands, and ``/agent list`` is for everyone), so
``/agent use`` and ``/agent forget`` check Manage Server themselves, from the permissions
Discord sends with the interaction.
"""

from __future__ import annotations

import io
import logging

from adapters.base import short_error_line
from adapters.discord_replies import NO_MENTIONS
from adapters.discord_routing import Place, bound_agent, key_for, place_of_channel
from adapters.discordpy import app_commands, discord
from bot.engine import Engine, NoGoal, UnknownAgent
from bot.logs import conversation_context
from config.agents import Agent
from memory.base import Conversation, GoalCheck, PlatformKey
from memory.export import export_conversation

logger = logging.getLogger(__name__)

Interaction = discord.Interaction[discord.Client]

STARTED_BY = "discord_started_by"
"""Conversation data: the user id a Parley-opened thread was opened for (its owner is the bot),
so that they can ``/agent forget`` it like a thread of their own."""
_PUBLIC_DEFER = "parley_public_defer"
_REACHED = discord.Colour.green()
_NOT_YET = discord.Colour.orange()
_MAX_CHOICES = 25
_FIELD_LIMIT = 1024
_LIST_LIMIT = 1900


class Refused(app_commands.AppCommandError):
    """The command cannot run here; the message is the line the person sees."""


class AgentTree(app_commands.CommandTree[discord.Client]):
    """The command tree: errors become one ephemeral line, never a traceback."""

    async def on_error(self, interaction: Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, Refused):
            line = str(error)
        else:
            cause: BaseException = error
            if isinstance(error, app_commands.CommandInvokeError):
                cause = error.original
            line = _failure_line(cause)
            command = interaction.command.qualified_name if interaction.command else "?"
            logger.warning(
                "/%s failed in channel %s: %s",
                command,
                interaction.channel_id,
                cause.__class__.__name__,
                exc_info=cause,
                extra=conversation_context(
                    conversation_id="",
                    platform="discord",
                    event_id=f"discord:interaction:{interaction.id}",
                ),
            )
        try:
            await tell_privately(interaction, line)
        except discord.HTTPException as exc:
            logger.warning("could not tell the person why /agent failed: %s", exc)


def _failure_line(exc: BaseException) -> str:
    if isinstance(exc, discord.Forbidden):
        return "Discord did not let me do that here: I may be missing a permission in this channel."
    return short_error_line(exc)


async def tell_privately(interaction: Interaction, line: str) -> None:
    """An ephemeral answer, whatever state the interaction is in.

    After a public defer the first follow-up would replace the public "thinking..." message,
    so that message is deleted and the line follows privately.
    """
    if not interaction.response.is_done():
        await interaction.response.send_message(line, ephemeral=True)
        return
    if interaction.extras.get(_PUBLIC_DEFER):
        interaction.extras[_PUBLIC_DEFER] = False
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            logger.debug("could not delete the deferred response: %s", exc)
    await interaction.followup.send(line, ephemeral=True)


async def defer(interaction: Interaction, *, ephemeral: bool) -> None:
    await interaction.response.defer(ephemeral=ephemeral, thinking=True)
    interaction.extras[_PUBLIC_DEFER] = not ephemeral


def _place(interaction: Interaction) -> Place:
    channel = interaction.channel
    if channel is None or interaction.channel_id is None:
        raise Refused("I can't tell which channel this is.")
    return place_of_channel(channel, interaction.guild_id)


def _key(interaction: Interaction) -> PlatformKey:
    if interaction.channel_id is None:
        raise Refused("I can't tell which channel this is.")
    return key_for(interaction.guild_id, interaction.channel_id)


class AgentCommands(app_commands.Group):
    """``/agent ...``"""

    def __init__(self, engine: Engine) -> None:
        super().__init__(name="agent", description="Talk to Parley's agents")
        self._engine = engine

    # helpers ---------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> Agent:
        agent = self._engine.agents.find(agent_id.strip())
        if agent is None:
            known = ", ".join(a.id for a in self._engine.agents.agents)
            raise Refused(f"There is no agent {agent_id!r}. Agents: {known}.")
        return agent

    async def _conversation(self, interaction: Interaction, doing: str) -> Conversation:
        conversation = await self._engine.store.find_conversation(key=_key(interaction))
        if conversation is None:
            raise Refused(f"There is no conversation here to {doing}.")
        return conversation

    async def _agent_here(self, interaction: Interaction) -> Agent:
        """The agent answering here: the open conversation's, else the channel's binding,
        else the default agent."""
        conversation = await self._engine.store.find_conversation(key=_key(interaction))
        if conversation is not None:
            return self._engine.agent_of(conversation)
        return await bound_agent(self._engine, _place(interaction)) or self._engine.agents.default

    async def agent_choices(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        return [
            app_commands.Choice(name=f"{agent.name} ({agent.id})"[:100], value=agent.id)
            for agent in self._engine.agents.agents
            if typed in agent.id or typed in agent.name.lower()
        ][:_MAX_CHOICES]

    # commands --------------------------------------------------------------------------

    @app_commands.command(name="list", description="The agents, and which one answers here")
    async def list_agents(self, interaction: Interaction) -> None:
        here = await self._agent_here(interaction)
        default = self._engine.agents.default
        lines = []
        for agent in self._engine.agents.agents:
            marks = [
                note
                for note, on in (
                    ("answers here", agent.id == here.id),
                    ("default", agent.id == default.id),
                )
                if on
            ]
            lines.append(
                f"**{agent.name}** (`{agent.id}`)" + (f" · {', '.join(marks)}" if marks else "")
            )
        text = _bounded_lines(lines, _LIST_LIMIT)
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="use", description="Make an agent answer in this channel")
    @app_commands.describe(agent="The agent's id")
    async def use(self, interaction: Interaction, agent: str) -> None:
        if interaction.guild_id is None:
            raise Refused("Agents are chosen per server channel; in DMs I use the default agent.")
        if not interaction.permissions.manage_guild:
            raise Refused("You need the Manage Server permission to choose this channel's agent.")
        chosen = self._agent(agent)
        place = _place(interaction)
        try:
            await self._engine.bind_channel(
                platform="discord",
                workspace=place.workspace,
                channel=str(place.channel_id),
                agent_id=chosen.id,
            )
        except UnknownAgent as exc:
            raise Refused(str(exc)) from exc
        line = f"{chosen.name} now answers every message in this channel."
        current = await self._engine.store.find_conversation(key=place.key)
        if current is not None and current.agent_id != chosen.id:
            await self._engine.reset(place.key)
            line += " The conversation with the previous agent is closed (and kept)."
        await interaction.response.send_message(line, allowed_mentions=NO_MENTIONS)

    @use.autocomplete("agent")
    async def _use_agents(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.agent_choices(interaction, current)

    @app_commands.command(name="start", description="Open a thread with an agent")
    @app_commands.describe(agent="The agent's id (default: this channel's agent)")
    async def start(self, interaction: Interaction, agent: str | None = None) -> None:
        channel = interaction.channel
        if not isinstance(channel, discord.TextChannel):
            raise Refused("Use /agent start in a server text channel (not in a thread or a DM).")
        chosen = self._agent(agent) if agent else await self._agent_here(interaction)
        await defer(interaction, ephemeral=False)
        thread = await channel.create_thread(
            name=f"{chosen.name} with {interaction.user.display_name}"[:100],
            type=discord.ChannelType.public_thread,
            auto_archive_duration=1440,
        )
        conversation, _ = await self._engine.open_conversation(
            key=key_for(interaction.guild_id, thread.id),
            agent_id=chosen.id,
            data={STARTED_BY: str(interaction.user.id)},
        )
        await thread.send(chosen.first_message, allowed_mentions=NO_MENTIONS)
        logger.info(
            "thread opened with /agent start",
            extra=conversation_context(
                conversation_id=conversation.id, platform="discord", agent_id=chosen.id
            ),
        )
        await interaction.followup.send(
            f"{chosen.name} is waiting for you in {thread.mention}.", allowed_mentions=NO_MENTIONS
        )

    @start.autocomplete("agent")
    async def _start_agents(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.agent_choices(interaction, current)

    @app_commands.command(name="reset", description="Start a new conversation here")
    async def reset(self, interaction: Interaction) -> None:
        conversation = await self._conversation(interaction, "reset")
        agent = self._engine.agent_of(conversation)
        key = conversation.key
        await self._engine.reset(key)
        await self._engine.open_conversation(key=key, agent_id=agent.id)
        await interaction.response.send_message(
            f"New conversation (the previous one is kept).\n\n{agent.first_message}",
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="summary", description="Check the agent's goal now")
    async def summary(self, interaction: Interaction) -> None:
        conversation = await self._conversation(interaction, "check")
        agent = self._engine.agent_of(conversation)
        if not agent.goal:
            raise Refused(f"{agent.name} has no goal to check.")
        await defer(interaction, ephemeral=False)
        try:
            check = await self._engine.check_goal(conversation.id)
        except NoGoal as exc:
            raise Refused(f"{agent.name} has no goal to check.") from exc
        if check.error:
            raise Refused("I couldn't check the goal just now. Please try again in a moment.")
        await interaction.followup.send(embed=goal_embed(agent, check))

    @app_commands.command(name="export", description="This conversation as a Markdown file")
    async def export(self, interaction: Interaction) -> None:
        conversation = await self._conversation(interaction, "export")
        await defer(interaction, ephemeral=True)
        text = await export_conversation(
            self._engine.store, conversation_id=conversation.id, fmt="md"
        )
        data = text.encode("utf-8")
        if len(data) > interaction.filesize_limit:
            raise Refused(
                "This conversation is too long to attach here; use `python -m bot export`."
            )
        file = discord.File(io.BytesIO(data), filename=f"conversation-{conversation.id}.md")
        await interaction.followup.send(
            f"{conversation.message_count} messages.", file=file, ephemeral=True
        )

    @app_commands.command(name="forget", description="Delete this conversation and its messages")
    async def forget(self, interaction: Interaction) -> None:
        conversation = await self._conversation(interaction, "forget")
        place = _place(interaction)
        user_id = interaction.user.id
        allowed = (
            place.is_dm
            or interaction.permissions.manage_guild
            or place.opened_by(user_id)
            or conversation.data.get(STARTED_BY) == str(user_id)
        )
        if not allowed:
            raise Refused(
                "Only someone with the Manage Server permission, or the person who started "
                "this thread, can make me forget it."
            )
        await self._engine.forget(conversation)
        logger.info(
            "conversation forgotten by %s",
            user_id,
            extra=conversation_context(conversation_id=conversation.id, platform="discord"),
        )
        await interaction.response.send_message(
            f"I have forgotten this conversation ({conversation.message_count} messages).",
            allowed_mentions=NO_MENTIONS,
        )


def _bounded_lines(lines: list[str], limit: int) -> str:
    shown: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index
        if len("\n".join([*shown, line])) > limit - 30:
            shown.append(f"…and {rest} more")
            break
        shown.append(line)
    return "\n".join(shown)


def goal_embed(agent: Agent, check: GoalCheck, *, place: str | None = None) -> discord.Embed:
    """The goal check as an embed: green when reached, orange when not yet. ``place`` names
    the conversation when the embed is shown somewhere else (a report channel)."""
    embed = discord.Embed(
        title=f"{agent.name}: goal check",
        description=_cut(agent.goal or "", 4096),
        colour=_REACHED if check.reached else _NOT_YET,
        timestamp=check.checked_at,
    )
    if place is not None:
        embed.add_field(name="Conversation", value=place, inline=False)
    embed.add_field(
        name="Goal reached", value="✅ yes" if check.reached else "⏳ not yet", inline=False
    )
    if check.summary:
        embed.add_field(name="Summary", value=_cut(check.summary, _FIELD_LIMIT), inline=False)
    if check.missing:
        missing = "\n".join(f"• {item}" for item in check.missing)
        embed.add_field(name="Missing", value=_cut(missing, _FIELD_LIMIT), inline=False)
    return embed


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def command_tree(client: discord.Client, engine: Engine) -> AgentTree:
    """The tree with the ``/agent`` group on it, attached to ``client``."""
    tree = AgentTree(client)
    tree.add_command(AgentCommands(engine))
    return tree
