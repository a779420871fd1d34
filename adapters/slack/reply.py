"""A reply growing in a Slack thread.

:func:`show_turn` drives the shared :func:`adapters.streaming.stream_by_edits` (throttling,
splitting long replies below Slack's limit, showing the stored reply in full at the end) with
:class:`ThreadSink`, which shows each part with Slack's chat streaming methods
(``chat.startStream`` / ``appendStream`` / ``stopStream``) and falls back to
``chat.postMessage`` then ``chat.update`` when streaming is unavailable or fails part-way.

Every call asks the channel's :class:`adapters.channel_budget.ChannelBudget`, shared by all
replies in the channel. A 429 is not retried blindly by slack_sdk here: it pauses the whole
channel for its ``Retry-After``, an intermediate update is dropped, a final one waits and goes
again. A streaming failure (anything but a rate limit) turns streaming off for that reply and
closes :class:`StreamGate` for its workspace only, for a minute at first and doubling up to a
cool-down while it keeps failing, so a workspace without streaming costs one failed call per
wait, not one per message.

Every part is Markdown that Slack renders itself, made safe by
:func:`adapters.slack.format.safe_markdown`: streamed (``markdown_text`` of the streaming
methods), posted and edited alike (``markdown_text``), so a reply that falls back to posting
looks exactly like a streamed one. None can mention anyone or link anywhere but a web or mail
address.

When the reply is complete, its last message gets :attr:`ThreadSink.footer` (the feedback
buttons): with the ``chat.stopStream`` that ends a stream, or one more ``chat.update`` (the
Markdown as a ``markdown`` block, then the footer) for a posted message.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.channel_budget import BudgetShort, ChannelBudget, retry_after
from adapters.slack.blocks import Block, markdown_block
from adapters.slack.format import escape, safe_markdown
from adapters.slack.payloads import error_code
from adapters.streaming import ReplyNotShown, ReplyShown, ShowRefused, stream_by_edits
from bot.engine import Turn, TurnResult
from bot.lru import BoundedLRU

logger = logging.getLogger(__name__)

SLACK_TEXT_LIMIT = 3900
"""Characters per message: below Slack's 4,000 for a message's ``text``, which a message with
blocks carries as its notification fallback."""
FIRST_CLOSURE = 60.0
"""Seconds a workspace goes without streaming after its first failure; each failure after the
gate reopened doubles it, up to the gate's cool-down."""
WORKSPACES_KEPT = 10_000
ALREADY_STOPPED = "message_not_in_streaming_state"
"""Slack's answer for a stream it already ended (a person pressed Stop): not a failure."""
BLOCKS_REFUSED = frozenset({"invalid_blocks", "invalid_blocks_format"})
"""Slack's refusals of the blocks themselves (the footer), not of the stream."""


@dataclass(frozen=True, slots=True)
class _Closure:
    until: float
    seconds: float


class StreamGate:
    """Whether Slack's streaming methods are worth trying, per workspace (team).

    A failure (unknown method, missing feature or scope, an error mid-stream) closes the
    workspace's gate for ``first`` seconds; a failure after it reopened closes it for twice as
    long as the time before, up to ``cooldown``; a stream that works resets it. Failures while
    it is closed (streams that had started before) do not lengthen it. Other workspaces are
    not affected. The table is bounded (least recently used workspaces are forgotten).
    """

    def __init__(
        self,
        *,
        cooldown: float = 900.0,
        first: float = FIRST_CLOSURE,
        capacity: int = WORKSPACES_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cooldown = cooldown
        self._first = min(first, cooldown)
        self._clock = clock
        self._closures: BoundedLRU[str, _Closure] = BoundedLRU(capacity)

    def available(self, team: str = "") -> bool:
        return self.closed_for(team) <= 0

    def closed_for(self, team: str = "") -> float:
        """Seconds until streaming is tried again in the workspace (0: now)."""
        closure = self._closures.get(team)
        return 0.0 if closure is None else max(0.0, closure.until - self._clock())

    def failed(self, reason: str, team: str = "") -> None:
        now = self._clock()
        closure = self._closures.get(team)
        if closure is not None and now < closure.until:
            return
        seconds = self._first if closure is None else min(closure.seconds * 2, self._cooldown)
        self._closures.put(team, _Closure(until=now + seconds, seconds=seconds))
        logger.warning(
            "Slack chat streaming failed in workspace %s (%s); replies there are posted and "
            "edited instead for the next %d seconds",
            team or "-",
            reason,
            round(seconds),
        )

    def succeeded(self, team: str = "") -> None:
        """A stream worked from start to stop: the next failure waits ``first`` again."""
        closure = self._closures.get(team)
        if closure is not None and self._clock() >= closure.until:
            self._closures.pop(team)


@dataclass(slots=True)
class Part:
    """One Slack message of a reply."""

    ts: str
    text: str
    """The Markdown it shows."""
    streaming: bool
    """Still an open stream (``chat.stopStream`` not yet called)."""
    streamed: str = ""
    """What the stream carries: ``text`` through :func:`safe_markdown`."""


def answering_rate_limits(client: AsyncWebClient) -> AsyncWebClient:
    """The client (same session, token and URL) without slack_sdk's 429 retries: a reply
    answers 429s per channel itself, dropping updates that are no longer worth sending."""
    kept = [h for h in client.retry_handlers if not isinstance(h, AsyncRateLimitErrorRetryHandler)]
    if len(kept) == len(client.retry_handlers):
        return client
    twin = copy.copy(client)
    twin.retry_handlers = kept
    return twin


class ThreadSink:
    """A :class:`adapters.streaming.MessageSink` posting into one thread.

    Without a ``budget`` its calls are never held back (tests of the Slack calls alone).
    After :func:`show_turn`, :attr:`shown` says whether the reply is visible in full, and in
    which messages.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        team: str,
        user: str,
        gate: StreamGate,
        budget: ChannelBudget | None = None,
    ) -> None:
        self._client = answering_rate_limits(client)
        self._channel = channel
        self._thread_ts = thread_ts
        self._team = team
        self._user = user
        self._gate = gate
        self._budget = budget
        self._may_stream = True
        self.parts: list[Part] = []
        self.shown: ReplyShown | None = None
        self.footer: list[Block] | None = None
        """Blocks for the end of the complete reply (the feedback buttons), once known."""
        self._footed: str | None = None
        """The ``ts`` of the message that shows :attr:`footer`."""

    # the MessageSink protocol ------------------------------------------------------------

    async def send(self, text: str, *, final: bool = False) -> Part:
        try:
            await self._close_streams(final=final)  # a new part: the earlier ones are complete
            part: Part | None = None
            if self._may_stream and self._gate.available(self._team):
                part = await self._start(text, final=final)
            if part is None:
                part = Part(ts=await self._post(text, final=final), text=text, streaming=False)
        except SlackApiError as exc:
            raise ShowRefused(error_code(exc)) from exc
        self.parts.append(part)
        return part

    async def edit(self, handle: Part, text: str, *, final: bool = False) -> None:
        try:
            await self._edit(handle, text, final=final)
        except SlackApiError as exc:
            raise ShowRefused(error_code(exc)) from exc

    async def delete(self, handle: Part, *, final: bool = False) -> None:
        try:
            if handle.streaming:
                await self._stop(handle, final=final)
            await self._call(
                final, lambda: self._client.chat_delete(channel=self._channel, ts=handle.ts)
            )
        except SlackApiError as exc:
            raise ShowRefused(error_code(exc)) from exc
        if handle in self.parts:
            self.parts.remove(handle)

    async def settle(self) -> None:
        """Close every open stream (a stream that cannot be closed becomes a plain message)
        and put :attr:`footer` under the last message."""
        try:
            await self._close_streams(final=True, footer=self.footer)
        except SlackApiError as exc:
            raise ShowRefused(error_code(exc)) from exc

    async def finish(self) -> None:
        """:meth:`settle`, for callers outside :func:`show_turn`."""
        await self.settle()

    async def abandon(self) -> None:
        """Close streams left open by an error or a cancellation, if the budget allows now."""
        try:
            await self._close_streams(final=False)
        except (BudgetShort, ShowRefused, SlackApiError) as exc:
            logger.info("a stream of an unfinished reply stays open: %s", exc)

    # the calls ---------------------------------------------------------------------------

    async def _edit(self, handle: Part, text: str, *, final: bool) -> None:
        if not handle.streaming:
            await self._update(handle, text, final=final)
            return
        markdown = safe_markdown(text)
        if not markdown.startswith(handle.streamed):  # a stream only grows: show it whole
            await self._settle(handle, text, final=final)
            return
        if len(markdown) > len(handle.streamed):
            more = markdown[len(handle.streamed) :]
            try:
                await self._call(
                    final,
                    lambda: self._client.chat_appendStream(
                        channel=self._channel, ts=handle.ts, markdown_text=more
                    ),
                )
            except SlackApiError as exc:
                self._streaming_failed(exc)
                await self._settle(handle, text, final=final)
                return
        handle.text = text
        handle.streamed = markdown

    async def _start(self, text: str, *, final: bool) -> Part | None:
        """A new part as a stream; None when Slack refuses to stream."""
        markdown = safe_markdown(text)
        try:
            response = await self._call(
                final,
                lambda: self._client.chat_startStream(
                    channel=self._channel,
                    thread_ts=self._thread_ts,
                    markdown_text=markdown,
                    recipient_team_id=self._team,
                    recipient_user_id=self._user,
                ),
            )
        except SlackApiError as exc:
            self._streaming_failed(exc)
            return None
        return Part(ts=str(response["ts"]), text=text, streaming=True, streamed=markdown)

    async def _close_streams(self, *, final: bool, footer: list[Block] | None = None) -> None:
        """Stop the open streams; ``footer`` goes under the last part."""
        for part in list(self.parts):
            blocks = footer if part is self.parts[-1] else None
            if part.streaming and not await self._stop(part, final=final, blocks=blocks):
                await self._settle(part, part.text, final=final)
        if footer and self.parts and self._footed != self.parts[-1].ts:
            await self._foot(self.parts[-1], footer, final=final)

    async def _stop(self, part: Part, *, final: bool, blocks: list[Block] | None = None) -> bool:
        """Stop the part's stream (``blocks`` at its end); False when Slack refused (the
        stream is over either way)."""
        extra: dict[str, Any] = {} if not blocks else {"blocks": blocks}
        try:
            await self._call(
                final,
                lambda: self._client.chat_stopStream(channel=self._channel, ts=part.ts, **extra),
            )
        except SlackApiError as exc:
            if error_code(exc) == ALREADY_STOPPED:  # Slack stopped it (the Stop button)
                part.streaming = False
                return True
            if blocks and error_code(exc) in BLOCKS_REFUSED:  # the stream is fine: stop it bare
                logger.info("the feedback buttons stay off a reply: %s", error_code(exc))
                return await self._stop(part, final=final)
            part.streaming = False
            self._streaming_failed(exc)
            return False
        part.streaming = False
        if blocks:
            self._footed = part.ts
        self._gate.succeeded(self._team)
        return True

    async def _foot(self, part: Part, footer: list[Block], *, final: bool) -> None:
        """Show ``footer`` under a posted part: its Markdown as a block, then the footer. Best
        effort: the reply is shown in full either way."""
        blocks = [markdown_block(safe_markdown(part.text)), *footer]
        try:
            await self._call(
                final,
                lambda: self._client.chat_update(
                    channel=self._channel, ts=part.ts, text=escape(part.text), blocks=blocks
                ),
            )
        except (SlackApiError, ShowRefused) as exc:
            reason = exc.reason if isinstance(exc, ShowRefused) else error_code(exc)
            logger.info("the feedback buttons stay off a reply: %s", reason)
        self._footed = part.ts

    async def _settle(self, part: Part, text: str, *, final: bool) -> None:
        """Show ``text`` in ``part`` as an ordinary message (a stream is stopped first)."""
        if part.streaming:
            await self._stop(part, final=final)
        try:
            await self._update(part, text, final=final)
        except SlackApiError as exc:  # the failed stream left no message to edit
            logger.info("could not edit the streamed message (%s); posting anew", error_code(exc))
            part.ts = await self._post(text, final=final)
            part.text = text

    async def _update(self, part: Part, text: str, *, final: bool) -> None:
        await self._call(
            final,
            lambda: self._client.chat_update(
                channel=self._channel, ts=part.ts, markdown_text=safe_markdown(text)
            ),
        )
        if self._footed == part.ts:
            self._footed = None  # the edit replaced the footer's blocks
        part.text = text

    async def _post(self, text: str, *, final: bool) -> str:
        response = await self._call(
            final,
            lambda: self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, markdown_text=safe_markdown(text)
            ),
        )
        return str(response["ts"])

    async def _call(
        self, final: bool, call: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse:
        """One call within the channel's budget. Raises :class:`BudgetShort` (an intermediate
        call without budget), :class:`ShowRefused` (a 429, after pausing the channel, or no
        connection), or Slack's other refusals as they are."""
        if self._budget is not None:
            if final:
                await self._budget.take(self._channel)
            elif not self._budget.try_take(self._channel):
                raise BudgetShort
        try:
            return await call()
        except SlackApiError as exc:
            if exc.response.status_code != 429 and error_code(exc) != "ratelimited":
                raise
            seconds = retry_after(exc.response.headers)
            if self._budget is not None:
                self._budget.pause(self._channel, seconds)
            raise ShowRefused("ratelimited", retry_after=seconds) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ShowRefused(error_code(exc)) from exc

    def _streaming_failed(self, exc: SlackApiError) -> None:
        """Not a rate limit (raised before this): this reply stops streaming, and so does the
        workspace for a while."""
        self._may_stream = False
        self._gate.failed(error_code(exc), self._team)


async def show_turn(
    turn: Turn,
    sink: ThreadSink,
    *,
    interval: float,
    posted: Callable[[str], Awaitable[None]] | None = None,
    footer: Callable[[TurnResult], list[Block] | None] | None = None,
) -> TurnResult:
    """Show ``turn`` in the sink's thread as it grows; returns its result (or raises its error).

    The end of the reply is shown from the stored text, whatever happened to the updates
    before. If Slack refuses even that, :class:`adapters.streaming.ReplyNotShown` is raised
    (the reply is stored) for the edge to say so in one line. :attr:`ThreadSink.shown` says how
    it ended. ``posted`` is told the ``ts`` of the reply's first message once it is posted;
    ``footer`` makes the blocks under the complete reply from the turn's result.
    """

    async def first_posted(part: Part) -> None:
        if posted is not None:
            await posted(part.ts)

    async def updates() -> AsyncIterator[str]:
        async for text in turn:
            yield text
        if footer is not None:
            try:
                result = await turn.result()
            except Exception:  # noqa: BLE001 - raised to the caller below, by turn.result()
                return
            sink.footer = footer(result)

    try:
        shown = await stream_by_edits(
            updates(), sink, limit=SLACK_TEXT_LIMIT, interval=interval, posted=first_posted
        )
    finally:
        await sink.abandon()
    result = await turn.result()
    sink.shown = ReplyShown(
        complete=shown.complete, message_ids=tuple(part.ts for part in shown.handles)
    )
    if not shown.complete:
        raise ReplyNotShown(sink.shown, "Slack refused the messages")
    return result
