"""The ``/agent`` slash commands on Discord: who is calling, and the outcomes as Discord
messages. What each subcommand does, who may run it and what it says is :mod:`bot.commands`.

Each command works on the conversation of the channel (or thread, or DM) it is used in: the
same key messages use, so one guild never reaches another's conversations. A refusal raises
:class:`Refused`; the tree answers it, and any other failure, with one ephemeral line. Slow work
(goal checks, exports, opening threads) is deferred first, inside Discord's three seconds. A
confirmation is an ephemeral message with a :class:`ConfirmView` (two buttons).
``/agent memory [forget:N|all]`` answers the caller alone, about the agent of the place.

Discord applies ``default_member_permissions`` to whole top-level commands only (discord.py
ignores ``default_permissions`` on subcommands, and ``/agent list`` is for everyone), so the
admins of the permission table are recognised by the Manage Server permission Discord sends
with each interaction.
"""

from __future__ import annotations

import io
import logging

from adapters.base import short_error_line
from adapters.discord.discordpy import app_commands, discord
from adapters.discord.reply import NO_MENTIONS
from adapters.discord.routing import Place, key_for, place_of_channel
from bot import commands as core
from bot.engine import Engine
from bot.logs import conversation_context
from config.agents import Agent
from memory.base import GoalCheck

logger = logging.getLogger(__name__)

Interaction = discord.Interaction[discord.Client]

STARTED_BY = core.OPENED_BY
"""Conversation data: the user id a Parley-opened thread was opened for (its owner is the bot),
so that they can ``/agent forget`` it like a thread of their own."""
ADMINS = "people with the Manage Server permission"
_PUBLIC_DEFER = "parley_public_defer"
_REACHED = discord.Colour.green()
_NOT_YET = discord.Colour.orange()
_MAX_CHOICES = 25
_FIELD_LIMIT = 1024
_LIST_LIMIT = 1900
_MESSAGE_LIMIT = 2000
_CONFIRM_SECONDS = 15 * 60.0


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


async def _manages_guild(interaction: Interaction) -> bool:
    return interaction.guild_id is not None and bool(interaction.permissions.manage_guild)


def caller_of(interaction: Interaction) -> core.Caller:
    """Who is calling, and where, as the command layer wants it."""
    place = _place(interaction)
    user = interaction.user

    async def is_admin() -> bool:
        return await _manages_guild(interaction)

    return core.Caller(
        key=place.key,
        user_id=str(user.id),
        user_name=user.display_name,
        admins=ADMINS,
        is_admin=is_admin,
        in_dm=place.is_dm,
        owns_place=place.opened_by(user.id),
        parent_channel=str(place.parent_id) if place.parent_id is not None else None,
    )


class ConfirmView(discord.ui.View):
    """The two buttons of a confirmation; whoever clicks is checked again by the core."""

    def __init__(self, commands: core.AgentCommands, question: core.NeedsConfirmation) -> None:
        super().__init__(timeout=_CONFIRM_SECONDS)
        self._commands = commands
        self._action = question.action
        confirm: discord.ui.Button[ConfirmView] = discord.ui.Button(
            label=question.confirm_label, style=discord.ButtonStyle.danger
        )
        cancel: discord.ui.Button[ConfirmView] = discord.ui.Button(
            label=question.cancel_label, style=discord.ButtonStyle.secondary
        )
        confirm.callback = self._confirm  # type: ignore[method-assign]
        cancel.callback = self._cancel  # type: ignore[method-assign]
        self.add_item(confirm)
        self.add_item(cancel)

    async def _confirm(self, interaction: Interaction) -> None:
        outcome = await self._commands.confirm(self._action, caller_of(interaction))
        if isinstance(outcome, core.Refused):
            if outcome.reason == core.NOT_YOURS:
                await interaction.response.send_message(outcome.reason, ephemeral=True)
                return
            await interaction.response.edit_message(content=outcome.reason, view=None)
            self.stop()
            return
        self.stop()
        await interaction.response.edit_message(content=outcome.text, view=None)
        if not outcome.private:
            await interaction.followup.send(outcome.text, allowed_mentions=NO_MENTIONS)

    async def _cancel(self, interaction: Interaction) -> None:
        self.stop()
        await interaction.response.edit_message(content=self._commands.cancel().text, view=None)

    async def on_error(
        self, interaction: Interaction, error: Exception, item: discord.ui.Item[ConfirmView]
    ) -> None:
        logger.warning(
            "a confirmation failed in channel %s: %s",
            interaction.channel_id,
            error.__class__.__name__,
            exc_info=error,
        )
        try:
            await tell_privately(interaction, _failure_line(error))
        except discord.HTTPException as exc:
            logger.warning("could not tell the person why the confirmation failed: %s", exc)


class AgentCommands(app_commands.Group):
    """``/agent ...``: each subcommand asks :mod:`bot.commands` and shows the outcome."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(name="agent", description="Talk to Parley's agents")
        self._engine = engine
        self._core = core.AgentCommands(engine)

    async def agent_choices(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        return [
            app_commands.Choice(name=f"{agent.name} ({agent.id})"[:100], value=agent.id)
            for agent in self._engine.agents.agents
            if typed in agent.id or typed in agent.name.lower()
        ][:_MAX_CHOICES]

    async def _run(
        self, interaction: Interaction, verb: core.Verb, argument: str = ""
    ) -> core.Outcome:
        return await self._core.run(
            core.Command(verb, argument.strip().lower()), caller_of(interaction)
        )

    async def _show(self, interaction: Interaction, outcome: core.Outcome) -> None:
        """Show what needs no slow work: lines, refusals, a new conversation, a question."""
        if isinstance(outcome, core.Refused):
            raise Refused(outcome.reason)
        if isinstance(outcome, core.Said):
            text = _bounded_lines(outcome.text.split("\n"), _LIST_LIMIT)
            if outcome.private:
                await interaction.response.send_message(
                    text, ephemeral=True, allowed_mentions=NO_MENTIONS
                )
            else:
                await interaction.response.send_message(text, allowed_mentions=NO_MENTIONS)
        elif isinstance(outcome, core.Started):
            await interaction.response.send_message(
                _cut(f"{outcome.note}\n\n{outcome.agent.first_message}", _MESSAGE_LIMIT),
                allowed_mentions=NO_MENTIONS,
            )
        elif isinstance(outcome, core.NeedsConfirmation):
            await interaction.response.send_message(
                outcome.prompt,
                view=ConfirmView(self._core, outcome),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
        else:
            raise TypeError(f"not shown here: {outcome!r}")

    # commands --------------------------------------------------------------------------

    @app_commands.command(name="list", description="The agents, and which one answers here")
    async def list_agents(self, interaction: Interaction) -> None:
        await self._show(interaction, await self._run(interaction, "list"))

    @app_commands.command(name="use", description="Make an agent answer in this channel")
    @app_commands.describe(agent="The agent's id")
    async def use(self, interaction: Interaction, agent: str) -> None:
        await self._show(interaction, await self._run(interaction, "use", agent))

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
        outcome = await self._run(interaction, "start", agent or "")
        if not isinstance(outcome, core.OpenThread):
            await self._show(interaction, outcome)
            return
        chosen = outcome.agent
        await defer(interaction, ephemeral=False)
        thread = await channel.create_thread(
            name=f"{chosen.name} with {interaction.user.display_name}"[:100],
            type=discord.ChannelType.public_thread,
            auto_archive_duration=1440,
        )
        conversation = await self._core.thread_opened(
            caller_of(interaction), chosen, key_for(interaction.guild_id, thread.id)
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
        await self._show(interaction, await self._run(interaction, "reset"))

    @app_commands.command(name="summary", description="Check the agent's goal now")
    async def summary(self, interaction: Interaction) -> None:
        await defer(interaction, ephemeral=False)
        outcome = await self._run(interaction, "summary")
        if not isinstance(outcome, core.GoalCheckToPost):
            raise _refused(outcome)
        await interaction.followup.send(embed=goal_embed(outcome.agent, outcome.check))

    @app_commands.command(name="export", description="This conversation as a Markdown file")
    async def export(self, interaction: Interaction) -> None:
        await defer(interaction, ephemeral=True)
        outcome = await self._run(interaction, "export")
        if not isinstance(outcome, core.FileToSend):
            raise _refused(outcome)
        if len(outcome.content) > interaction.filesize_limit:
            raise Refused(
                "This conversation is too long to attach here; use `python -m bot export`."
            )
        file = discord.File(io.BytesIO(outcome.content), filename=outcome.name)
        await interaction.followup.send(
            outcome.comment, file=file, ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="forget", description="Delete this conversation and its messages")
    async def forget(self, interaction: Interaction) -> None:
        await self._show(interaction, await self._run(interaction, "forget"))

    @app_commands.command(name="memory", description="What the agent here remembers about you")
    @app_commands.describe(forget="A number from /agent memory, or all: forget it")
    async def memory(self, interaction: Interaction, forget: str | None = None) -> None:
        argument = "" if forget is None else f"forget {forget}"
        await self._show(interaction, await self._run(interaction, "memory", argument))

    @app_commands.command(name="usage", description="Tokens the agent here used, and their cost")
    async def usage(self, interaction: Interaction) -> None:
        await self._show(interaction, await self._run(interaction, "usage"))


def _refused(outcome: core.Outcome) -> Refused:
    """The refusal a slow subcommand came to instead of its work."""
    if isinstance(outcome, core.Refused):
        return Refused(outcome.reason)
    raise TypeError(f"unexpected outcome: {outcome!r}")


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
