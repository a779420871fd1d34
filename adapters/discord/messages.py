"""Discord's side of the turn journal: what a recorded message asks, and where its reply goes.

The Discord adapter records a message it will answer as soon as it arrives (Discord never
sends a message again), with the text already read (attachments included) and where to
answer: the channel or thread, and the message to reply to. Any process can then answer it
from the entry alone, through discord.py's REST client: a partial channel and message need
no gateway cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from adapters.base import FAILURE_LINE
from adapters.channel_budget import ChannelBudget
from adapters.discord.discordpy import discord
from adapters.discord.reply import MESSAGE_LIMIT, NO_MENTIONS, ChannelSink, show_turn
from adapters.streaming import ReplyNotShown, as_shown, show_complete
from bot.engine import IncomingMessage, Turn
from bot.errors import ParleyError
from bot.journal import Shown, TurnJournal, entry_context
from memory.base import JournalEntry

_MAX_LEFTOVERS = 100
"""The most messages read back when looking for a reply an attempt left cut: one attempt
posts a reply's parts and perhaps a line, never this many."""
_REPLY_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})

logger = logging.getLogger(__name__)


def discord_position(message_id: int) -> str:
    """A message's place in its channel's order: its snowflake (time-ordered), zero-padded."""
    return f"{message_id:020d}"


def entry_message(
    *,
    text: str,
    author_id: int,
    author_name: str,
    channel_id: int,
    message_id: int,
    reply_to: int | None,
    agent_id: str | None,
) -> dict[str, str | int | None]:
    """The journal's record of a Discord message (read back by :class:`DiscordTurns`)."""
    return {
        "text": text,
        "author_id": str(author_id),
        "author_name": author_name,
        "channel_id": str(channel_id),
        "message_id": str(message_id),
        "reply_to": str(reply_to) if reply_to is not None else None,
        "agent_id": agent_id,
    }


class DiscordTurns:
    """A :class:`bot.journal.Shower` for Discord, over the adapter's running client."""

    def __init__(
        self,
        client: Callable[[], discord.Client | None],
        *,
        journal: TurnJournal,
        budget: ChannelBudget,
        interval: float,
    ) -> None:
        self._client = client
        self._journal = journal
        self._budget = budget
        self._interval = interval

    async def incoming(self, entry: JournalEntry) -> IncomingMessage | None:
        message = entry.message
        text = str(message.get("text") or "")
        if not text:
            return None
        agent_id = message.get("agent_id")
        return IncomingMessage(
            key=entry.key,
            text=text,
            author_id=str(message.get("author_id") or ""),
            author_name=str(message.get("author_name") or ""),
            platform_message_id=str(message.get("message_id") or "") or None,
            agent_id=str(agent_id) if agent_id else None,
        )

    async def show_live(self, entry: JournalEntry, turn: Turn) -> Shown:
        channel, reply_to = self._place(entry)
        if entry.shown_ref is not None:  # a reply cut by a process that died: it goes
            await _delete(channel, entry.shown_ref)

        async def posted(message: discord.Message) -> None:
            await self._journal.reply_posted(entry, str(message.id))

        sink = ChannelSink(channel, reply_to=reply_to, budget=self._budget)
        try:
            shown = await show_turn(
                turn, channel, reply_to=reply_to, interval=self._interval, sink=sink, posted=posted
            )
        except ReplyNotShown as exc:
            return as_shown(exc.shown)
        await turn.result()  # a failed turn (the store went away) raises: the journal retries
        if not shown:
            logger.warning("the reply had no visible text")
            await channel.send(FAILURE_LINE, allowed_mentions=NO_MENTIONS)
        return as_shown(sink.shown)

    async def show_stored(self, entry: JournalEntry, text: str) -> Shown:
        channel, reply_to = self._place(entry)
        if entry.shown_ref is not None:  # a reply cut short: its stump goes, the whole comes
            await _delete(channel, entry.shown_ref)
        shown = await show_complete(
            text, ChannelSink(channel, reply_to=reply_to, budget=self._budget), limit=MESSAGE_LIMIT
        )
        return Shown(
            complete=shown.complete, ref=str(shown.handles[0].id) if shown.handles else None
        )

    async def tell(self, entry: JournalEntry, line: str) -> None:
        channel, reply_to = self._place(entry)
        reference = reply_to.to_reference(fail_if_not_exists=False) if reply_to else None
        await channel.send(line, reference=reference, allowed_mentions=NO_MENTIONS)  # type: ignore[arg-type]

    async def clear_leftovers(self, entry: JournalEntry, since: datetime) -> None:
        client = self._client()
        if client is None or client.user is None:
            return
        channel, _ = self._place(entry)
        after = max(
            int(str(entry.message.get("message_id") or 0)),
            discord.utils.time_snowflake(since, high=True),
        )
        try:
            async for found in channel.history(
                after=discord.Object(id=after), limit=_MAX_LEFTOVERS, oldest_first=True
            ):
                if (
                    found.author.id == client.user.id
                    and found.type in _REPLY_TYPES  # not a slash command's answer
                    and str(found.id) != entry.shown_ref
                ):
                    logger.info(
                        "deleting a reply left cut by an earlier attempt",
                        extra=entry_context(entry),
                    )
                    await _delete(channel, str(found.id))
        except discord.HTTPException as exc:
            logger.warning(
                "could not look for a reply left cut in the channel: %s",
                exc,
                extra=entry_context(entry),
            )

    def _place(
        self, entry: JournalEntry
    ) -> tuple[discord.PartialMessageable, discord.PartialMessage | None]:
        client = self._client()
        if client is None:
            raise ParleyError("the Discord adapter is not running")
        channel = client.get_partial_messageable(int(str(entry.message["channel_id"])))
        reply_to = entry.message.get("reply_to")
        return channel, channel.get_partial_message(int(str(reply_to))) if reply_to else None


async def _delete(channel: discord.PartialMessageable, message_id: str) -> None:
    """Delete a cut reply; one that cannot be deleted stays (logged)."""
    try:
        await channel.get_partial_message(int(message_id)).delete()
    except (discord.HTTPException, ValueError) as exc:
        logger.debug("the cut reply stays: %s", exc)
