"""Show an agent's reply in a Discord channel: typing indicator, then throttled edits.

The reply is posted when its first text arrives and edited as it grows, at most once per
``interval`` (Discord rate-limits edits; discord.py waits out any 429 itself). A reply over
Discord's 2,000 characters continues in further messages, split at lines, then words, with
code blocks closed and reopened (:mod:`adapters.streaming`, :mod:`adapters.chunking`).
"""

from __future__ import annotations

import contextlib
import logging

from adapters.discordpy import discord
from adapters.streaming import stream_by_edits
from bot.engine import Turn

logger = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
NO_MENTIONS = discord.AllowedMentions.none()
"""Model text never pings anyone: no @everyone, roles, users, nor the replied-to person."""


class ChannelSink:
    """A :class:`adapters.streaming.MessageSink` over a Discord channel or thread.

    The first message replies to the person's message (when given), so that in a busy
    channel it is clear what is being answered; later parts are plain messages.
    """

    def __init__(
        self, channel: discord.abc.Messageable, *, reply_to: discord.Message | None = None
    ) -> None:
        self._channel = channel
        self._reference = (
            reply_to.to_reference(fail_if_not_exists=False) if reply_to is not None else None
        )

    async def send(self, text: str) -> discord.Message:
        reference, self._reference = self._reference, None
        if reference is None:
            return await self._channel.send(text, allowed_mentions=NO_MENTIONS)
        return await self._channel.send(text, reference=reference, allowed_mentions=NO_MENTIONS)

    async def edit(self, handle: discord.Message, text: str) -> None:
        await handle.edit(content=text, allowed_mentions=NO_MENTIONS)

    async def delete(self, handle: discord.Message) -> None:
        await handle.delete()


async def show_turn(
    turn: Turn,
    channel: discord.abc.Messageable,
    *,
    reply_to: discord.Message | None,
    interval: float,
) -> list[discord.Message]:
    """Stream the turn's visible text into ``channel``, typing while the model works.

    Returns the messages posted. An error from Discord propagates; the turn itself goes on in
    the engine either way.
    """
    sink = ChannelSink(channel, reply_to=reply_to)
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(channel.typing())
        except discord.HTTPException as exc:  # no indicator is no reason to leave unanswered
            logger.debug("typing indicator refused: %s", exc)
        return await stream_by_edits(turn, sink, limit=MESSAGE_LIMIT, interval=interval)
