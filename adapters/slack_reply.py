"""A reply growing in a Slack thread.

:func:`show_turn` drives the shared :func:`adapters.streaming.stream_by_edits` (throttling,
splitting long replies below Slack's limit) with :class:`ThreadSink`, which shows each part
with Slack's chat streaming methods (``chat.startStream`` / ``appendStream`` / ``stopStream``)
and falls back to ``chat.postMessage`` then ``chat.update`` when streaming is unavailable or
fails part-way. A failure closes :class:`StreamGate` for a cool-down, so a workspace without
streaming costs one failed call per cool-down, not one per message.

Streamed text is Markdown (Slack renders it), made safe by
:func:`adapters.slack_format.safe_markdown`; posted and edited text is converted to mrkdwn.
Neither can mention anyone or link anywhere but a web or mail address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_format import markdown_to_mrkdwn, safe_markdown
from adapters.slack_payloads import error_code
from adapters.streaming import stream_by_edits
from bot.engine import Turn, TurnResult

logger = logging.getLogger(__name__)

SLACK_TEXT_LIMIT = 3900
"""Characters per message: below Slack's 4,000, with room for mrkdwn's escapes."""


class StreamGate:
    """Whether Slack's streaming methods are worth trying. Closed for ``cooldown`` seconds
    after any failure (unknown method, missing feature or scope, an error mid-stream)."""

    def __init__(
        self, *, cooldown: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cooldown = cooldown
        self._clock = clock
        self._closed_until: float | None = None

    def available(self) -> bool:
        return self._closed_until is None or self._clock() >= self._closed_until

    def failed(self, reason: str) -> None:
        if self.available():
            logger.warning(
                "Slack chat streaming failed (%s); replies are posted and edited instead "
                "for the next %d seconds",
                reason,
                round(self._cooldown),
            )
        self._closed_until = self._clock() + self._cooldown


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


class ThreadSink:
    """A :class:`adapters.streaming.MessageSink` posting into one thread."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        team: str,
        user: str,
        gate: StreamGate,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._team = team
        self._user = user
        self._gate = gate
        self.parts: list[Part] = []

    async def send(self, text: str) -> Part:
        await self._close_streams()  # a new part: the earlier ones are complete
        part: Part | None = None
        if self._gate.available():
            markdown = safe_markdown(text)
            try:
                response = await self._client.chat_startStream(
                    channel=self._channel,
                    thread_ts=self._thread_ts,
                    markdown_text=markdown,
                    recipient_team_id=self._team,
                    recipient_user_id=self._user,
                )
                part = Part(ts=str(response["ts"]), text=text, streaming=True, streamed=markdown)
            except SlackApiError as exc:
                self._gate.failed(error_code(exc))
        if part is None:
            part = Part(ts=await self._post(text), text=text, streaming=False)
        self.parts.append(part)
        return part

    async def edit(self, handle: Part, text: str) -> None:
        if not handle.streaming:
            await self._update(handle, text)
            return
        markdown = safe_markdown(text)
        if not markdown.startswith(handle.streamed):  # a stream only grows: show it whole
            await self._settle(handle, text)
            return
        if len(markdown) > len(handle.streamed):
            try:
                await self._client.chat_appendStream(
                    channel=self._channel,
                    ts=handle.ts,
                    markdown_text=markdown[len(handle.streamed) :],
                )
            except SlackApiError as exc:
                self._gate.failed(error_code(exc))
                await self._settle(handle, text)
                return
        handle.text = text
        handle.streamed = markdown

    async def delete(self, handle: Part) -> None:
        if handle.streaming:
            await self._stop(handle)
        await self._client.chat_delete(channel=self._channel, ts=handle.ts)
        if handle in self.parts:
            self.parts.remove(handle)

    async def finish(self) -> None:
        """Close every open stream; a stream that cannot be closed becomes a plain message."""
        await self._close_streams()

    async def _close_streams(self) -> None:
        for part in self.parts:
            if part.streaming and not await self._stop(part):
                await self._settle(part, part.text)

    async def _stop(self, part: Part) -> bool:
        part.streaming = False
        try:
            await self._client.chat_stopStream(channel=self._channel, ts=part.ts)
        except SlackApiError as exc:
            self._gate.failed(error_code(exc))
            return False
        return True

    async def _settle(self, part: Part, text: str) -> None:
        """Show ``text`` in ``part`` as an ordinary message (a stream is stopped first)."""
        if part.streaming:
            await self._stop(part)
        try:
            await self._update(part, text)
        except SlackApiError as exc:  # the failed stream left no message to edit
            logger.info("could not edit the streamed message (%s); posting anew", error_code(exc))
            part.ts = await self._post(text)
            part.text = text

    async def _update(self, part: Part, text: str) -> None:
        await self._client.chat_update(
            channel=self._channel, ts=part.ts, text=markdown_to_mrkdwn(text)
        )
        part.text = text

    async def _post(self, text: str) -> str:
        response = await self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, text=markdown_to_mrkdwn(text)
        )
        return str(response["ts"])


async def show_turn(turn: Turn, sink: ThreadSink, *, interval: float) -> TurnResult:
    """Show ``turn`` in the sink's thread as it grows; returns its result (or raises its error)."""
    try:
        await stream_by_edits(turn, sink, limit=SLACK_TEXT_LIMIT, interval=interval)
        return await turn.result()
    finally:
        await sink.finish()
