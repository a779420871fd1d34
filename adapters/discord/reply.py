"""Show an agent's reply in a Discord channel: typing indicator, then throttled edits.

The reply is posted when its first text arrives and edited as it grows, at most once per
``interval``, and always shown complete at the end from the stored text
(:mod:`adapters.streaming`). A reply over Discord's 2,000 characters continues in further
messages, split at lines, then words, with code blocks closed and reopened
(:mod:`adapters.chunking`).

Every post, edit and delete asks the channel's :class:`adapters.channel_budget.ChannelBudget`,
shared by every reply in the channel (a thread is a channel of its own). discord.py waits out
any 429 itself, per route; :func:`rate_limit_trace` tells the budget too, so that every reply
in the channel waits for the ``Retry-After``, whichever route was limited.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import TypeVar

import aiohttp

from adapters.channel_budget import BudgetShort, ChannelBudget, retry_after
from adapters.discord.discordpy import discord
from adapters.streaming import ReplyNotShown, ReplyShown, ShowRefused, stream_by_edits
from bot.engine import Turn

logger = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
NO_MENTIONS = discord.AllowedMentions.none()
"""Model text never pings anyone: no @everyone, roles, users, nor the replied-to person."""
_CHANNEL_PATH = re.compile(r"/channels/(\d+)(?:/|$)")

T = TypeVar("T")


class ChannelSink:
    """A :class:`adapters.streaming.MessageSink` over a Discord channel or thread.

    The first message replies to the person's message (when given), so that in a busy
    channel it is clear what is being answered; later parts are plain messages (a message
    posted after the first was deleted replies in its place). Without a ``budget`` its calls
    are never held back. After :func:`show_turn`, :attr:`shown` says whether the reply is
    visible in full, and in which messages.
    """

    def __init__(
        self,
        channel: discord.abc.Messageable,
        *,
        reply_to: discord.Message | discord.PartialMessage | None = None,
        budget: ChannelBudget | None = None,
    ) -> None:
        self._channel = channel
        self._key = str(getattr(channel, "id", ""))
        self._budget = budget
        self._asked = (
            reply_to.to_reference(fail_if_not_exists=False) if reply_to is not None else None
        )
        self._reference = self._asked
        self._replying: discord.Message | None = None
        """The message that replies to the person's."""
        self.shown: ReplyShown | None = None

    async def send(self, text: str, *, final: bool = False) -> discord.Message:
        reference = self._reference
        if reference is None:
            message = await self._call(
                final, lambda: self._channel.send(text, allowed_mentions=NO_MENTIONS)
            )
        else:
            message = await self._call(
                final,
                lambda: self._channel.send(text, reference=reference, allowed_mentions=NO_MENTIONS),
            )
        if reference is not None:
            self._reference, self._replying = None, message
        return message

    async def edit(self, handle: discord.Message, text: str, *, final: bool = False) -> None:
        await self._call(final, lambda: handle.edit(content=text, allowed_mentions=NO_MENTIONS))

    async def delete(self, handle: discord.Message, *, final: bool = False) -> None:
        await self._call(final, handle.delete)
        if handle is self._replying:
            self._reference, self._replying = self._asked, None

    async def settle(self) -> None:
        """Nothing stays open on Discord."""

    async def _call(self, final: bool, call: Callable[[], Awaitable[T]]) -> T:
        """One call within the channel's budget; Discord's refusals become
        :class:`ShowRefused` (a 429 after pausing the channel)."""
        if self._budget is not None:
            if final:
                await self._budget.take(self._key)
            elif not self._budget.try_take(self._key):
                raise BudgetShort
        try:
            return await call()
        except discord.RateLimited as exc:  # discord.py gave up waiting (max_ratelimit_timeout)
            self._pause(exc.retry_after)
            raise ShowRefused("rate limited", retry_after=exc.retry_after) from exc
        except discord.HTTPException as exc:
            if exc.status == 429:  # discord.py retried and gave up
                seconds = retry_after(exc.response.headers)
                self._pause(seconds)
                raise ShowRefused("rate limited", retry_after=seconds) from exc
            raise ShowRefused(f"{exc.status} {exc.text or exc.__class__.__name__}"[:200]) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ShowRefused(exc.__class__.__name__) from exc

    def _pause(self, seconds: float) -> None:
        if self._budget is not None:
            self._budget.pause(self._key, seconds)


async def show_turn(
    turn: Turn,
    channel: discord.abc.Messageable,
    *,
    reply_to: discord.Message | discord.PartialMessage | None,
    interval: float,
    budget: ChannelBudget | None = None,
    sink: ChannelSink | None = None,
    posted: Callable[[discord.Message], Awaitable[None]] | None = None,
) -> list[discord.Message]:
    """Stream the turn's visible text into ``channel``, typing while the model works.

    Returns the messages showing the complete reply (none when it has no visible text). When
    Discord refuses to show it in full even after retries and a fresh post,
    :class:`adapters.streaming.ReplyNotShown` is raised (the reply is stored) for the edge to
    say so in one line; a failed turn raises its own error. Pass ``sink`` to read
    :attr:`ChannelSink.shown` afterwards. ``posted`` is told the reply's first message once
    it is posted.
    """
    sink = sink or ChannelSink(channel, reply_to=reply_to, budget=budget)
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(channel.typing())
        except discord.HTTPException as exc:  # no indicator is no reason to leave unanswered
            logger.debug("typing indicator refused: %s", exc)
        shown = await stream_by_edits(
            turn, sink, limit=MESSAGE_LIMIT, interval=interval, posted=posted
        )
    sink.shown = ReplyShown(
        complete=shown.complete, message_ids=tuple(str(message.id) for message in shown.handles)
    )
    if not shown.complete:
        raise ReplyNotShown(sink.shown, "Discord refused the messages")
    return list(shown.handles)


def rate_limit_trace(budget: ChannelBudget) -> aiohttp.TraceConfig:
    """An aiohttp trace for discord.py's HTTP client: a 429 on any ``/channels/{id}/...`` route
    pauses that channel in ``budget`` for the time Discord asked."""

    async def on_request_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        if params.response.status != 429:
            return
        found = _CHANNEL_PATH.search(params.url.path)
        if found is not None:
            budget.pause(found.group(1), retry_after(params.response.headers))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    return trace
