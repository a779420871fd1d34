"""What the bot does with a Slack message or a new assistant thread.

A message is used when it is addressed to the bot (a direct message, a mention) or continues
a thread where the bot has a conversation. :meth:`MessageHandler.intake` runs before Bolt
acknowledges the event: a message to answer goes into the turn journal, keyed by its
team/channel/ts (so a redelivery, or the ``app_mention`` and ``message`` pair of one mention,
is one entry), and Slack is acknowledged only once it is stored. The journal then drains the
thread in order and calls back here (the :class:`bot.journal.Shower` methods) for the engine's
message and to show the reply. What is not a turn (a command in a thread, a bare mention,
files alone) runs after the acknowledgement, deduplicated through the processed-events
collection. Any exception there stops here: logged with the conversation id, one short line
in the thread.

In a thread of the bot's direct messages (recognised from the message itself, see
:attr:`SlackMessage.in_agent_thread`) the reply also drives Slack's agent surface
(:mod:`adapters.slack.agent`): status, loading messages, title, and the Stop button
(:meth:`MessageHandler.stop`). Every reply ends with feedback buttons, whose clicks
:meth:`MessageHandler.rate` records through the :class:`bot.feedback.FeedbackBook`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.base import BUSY_LINE, short_error_line
from adapters.channel_budget import ChannelBudget
from adapters.slack.agent import AgentSurface, aux_call
from adapters.slack.blocks import Block, feedback_blocks
from adapters.slack.commands import FILES_NOTE, AgentCommands, Notify, RecentThreads, thread_command
from adapters.slack.format import (
    mentioned_users,
    safe_markdown,
    slack_to_plain,
)
from adapters.slack.payloads import (
    BlockActions,
    BotIdentity,
    EventCallback,
    Ignored,
    SlackMessage,
    error_code,
    parse_assistant_thread,
    parse_feedback,
    parse_home_opened,
    parse_message,
    parse_stop,
)
from adapters.slack.reply import SLACK_TEXT_LIMIT, StreamGate, ThreadSink, show_turn
from adapters.slack.users import UserDirectory
from adapters.streaming import ReplyNotShown, as_shown, show_complete
from bot.engine import Engine, EngineBusy, IncomingMessage, Turn, TurnResult
from bot.errors import StoreError
from bot.feedback import FeedbackBook
from bot.journal import Shown, TurnJournal, entry_context
from bot.logs import conversation_context
from memory.base import Conversation, JournalEntry, NewJournalEntry, PlatformKey

logger = logging.getLogger(__name__)

LISTENING = "I'm here: write your message after the mention."
STOPPED_LINE = "Stopped."
THANKS_LINE = "Thanks for your feedback."
STOP_POLL = 1.0
"""Seconds between looks, while a reply in an agent thread is written, for a Stop pressed on
another process (Slack sends each event to one of them)."""
GONE_LINE = "That reply is no longer kept, so it cannot be rated."
_MAX_MENTIONS = 10
_MAX_LEFTOVERS = 100
"""The most messages read back from a thread when looking for a reply an attempt left cut:
one attempt posts a reply's parts and perhaps a line, never this many."""
"""Mentioned people whose names are looked up for one message; more stay as ids."""


@dataclass(frozen=True, slots=True)
class ReplyOptions:
    edit_interval: float
    """Seconds between edits (or stream appends) of a growing reply."""
    allowed_bots: frozenset[str] = frozenset()
    """Other bots (``bot_id``) whose messages are answered."""


class MessageHandler:
    """Turns Slack messages into engine turns shown in their thread."""

    def __init__(
        self,
        *,
        engine: Engine,
        client: AsyncWebClient,
        bot: BotIdentity,
        users: UserDirectory,
        commands: AgentCommands,
        recent: RecentThreads,
        gate: StreamGate,
        budget: ChannelBudget,
        options: ReplyOptions,
        journal: TurnJournal,
        feedback: FeedbackBook,
        stop_poll: float = STOP_POLL,
    ) -> None:
        self._engine = engine
        self._journal = journal
        self._client = client
        self._bot = bot
        self._users = users
        self._commands = commands
        self._recent = recent
        self._gate = gate
        self._budget = budget
        self._options = options
        self._feedback = feedback
        self._stop_poll = stop_poll
        self._agent = AgentSurface(client)

    # messages ------------------------------------------------------------------------------

    async def intake(self, body: EventCallback) -> Coroutine[Any, Any, None] | None:
        """Take the message in an ``event_callback`` body, before it is acknowledged.

        A message to answer is recorded in the journal (raising, so that Slack is not
        acknowledged and sends it again, when the store cannot take it) and its thread is
        drained by the journal. Other uses (an in-thread command, a bare mention, files alone)
        come back as work to run after the acknowledgement. None: nothing to do.
        """
        parsed = parse_message(body, self._bot, allowed_bots=self._options.allowed_bots)
        if isinstance(parsed, Ignored):
            logger.debug("Slack event %s ignored: %s", body.get("event_id"), parsed.reason)
            return None
        message = parsed
        if not _addressed(message):
            if message.thread_ts is None:
                return None  # channel chatter, not for the bot
            if not await self._in_thread(message.key):
                return None  # a thread the bot has no conversation in
        if thread_command(message.text) is not None and message.mentions_bot:
            return self._other(message)
        if not slack_to_plain(message.text).strip():
            return self._other(message)
        entry = NewJournalEntry(
            id=f"slack:{message.team}:{message.channel}:{message.ts}",
            key=message.key,
            position=slack_position(message.ts),
            message=asdict(message),
        )
        if await self._journal.record(entry):
            self._journal.kick(message.key)
        else:
            logger.debug("Slack message %s already recorded (event %s)", entry.id, message.event_id)
        return None

    async def _in_thread(self, key: PlatformKey) -> bool:
        """The bot talks in this thread: it has a conversation there, or will have one as
        soon as a message waiting in the journal is answered (the mention that opened the
        thread, when the person writes again before the first reply). The journal is read
        first: once its entries are finished, their conversation exists."""
        store = self._engine.store
        if await store.journal_next(key=key) is not None:
            return True
        return await store.find_conversation(key=key) is not None

    async def _other(self, message: SlackMessage) -> None:
        """What a message asks that is not a turn: a command in its thread, a greeting."""
        try:
            if await self._first_time(message):
                await self._answer_other(message)
        except Exception as exc:  # noqa: BLE001 - the adapter's edge: logged, one line to people
            await self._report(message, exc, None)

    async def refuse(self, body: EventCallback) -> None:
        """Too busy to take a message: say so where a person addressed the bot directly
        (decided without the store, which is part of the load)."""
        parsed = parse_message(body, self._bot, allowed_bots=self._options.allowed_bots)
        if isinstance(parsed, SlackMessage) and (parsed.is_dm or parsed.mentions_bot):
            await aux_call("chat.postMessage", self._post(parsed, BUSY_LINE))

    async def _first_time(self, message: SlackMessage) -> bool:
        """Record the event and the message; False for a redelivery or the second of the
        app_mention/message pair."""
        store = self._engine.store
        if message.event_id and not await store.mark_event_processed(
            event_id=f"slack:event:{message.event_id}"
        ):
            logger.info("Slack event %s redelivered; dropped", message.event_id)
            return False
        seen = f"slack:message:{message.team}:{message.channel}:{message.ts}"
        if not await store.mark_event_processed(event_id=seen):
            logger.debug("Slack message %s already handled (event %s)", seen, message.event_id)
            return False
        return True

    async def _answer_other(self, message: SlackMessage) -> None:
        verb = thread_command(message.text) if message.mentions_bot else None
        if verb is not None:
            await self._commands.run(
                verb, key=message.key, user=message.user, notify=self._ephemeral(message)
            )
        elif message.has_files:
            await self._post(message, FILES_NOTE)
        else:
            await self._greet(message)

    # the journal's side (a Shower): answering recorded messages ------------------------------

    async def incoming(self, entry: JournalEntry) -> IncomingMessage | None:
        message = _recorded(entry)
        names = await self._users.names(mentioned_users(message.text)[:_MAX_MENTIONS])
        text = slack_to_plain(message.text, names).strip()
        if not text:
            return None
        agent_id = None
        if await self._engine.store.find_conversation(key=message.key) is None:
            agent = await self._engine.agent_for_channel(
                platform="slack", workspace=message.team, channel=message.channel
            )
            agent_id = agent.id
        return IncomingMessage(
            key=message.key,
            text=text,
            author_id=message.user,
            author_name=await self._users.display_name(message.user),
            platform_message_id=message.ts,
            agent_id=agent_id,
        )

    async def show_live(self, entry: JournalEntry, turn: Turn) -> Shown:
        message = _recorded(entry)
        if entry.shown_ref is not None:  # a reply cut by a process that died: it goes
            await self._delete(message, entry.shown_ref)

        async def posted(ts: str) -> None:
            await self._journal.reply_posted(entry, ts)

        agent = message.in_agent_thread
        watcher: asyncio.Task[None] | None = None
        if agent:
            await self._agent.working(message.key, user=message.user)
            watcher = asyncio.create_task(self._watch_stop(entry, message.key))
        sink = self._sink(message)
        try:
            result = await show_turn(
                turn, sink, interval=self._options.edit_interval, posted=posted, footer=_footer
            )
        except ReplyNotShown as exc:
            return as_shown(exc.shown)
        finally:
            if watcher is not None:
                watcher.cancel()
            if agent:
                await self._agent.idle(message.key)
        self._recent.note(message.key)
        if agent and result.user_message.seq <= 2 and result.conversation.title:
            await self._agent.title(message.key, result.conversation.title)
        return as_shown(sink.shown)

    async def show_stored(self, entry: JournalEntry, text: str) -> Shown:
        message = _recorded(entry)
        if entry.shown_ref is not None:  # a reply cut short: its stump goes, the whole comes
            await self._delete(message, entry.shown_ref)
        sink = self._sink(message)
        if entry.reply_message_id is not None:
            sink.footer = feedback_blocks(entry.reply_message_id)
        shown = await show_complete(text, sink, limit=SLACK_TEXT_LIMIT)
        self._recent.note(message.key)
        return Shown(complete=shown.complete, ref=shown.handles[0].ts if shown.handles else None)

    async def tell(self, entry: JournalEntry, line: str) -> None:
        await self._post(_recorded(entry), line)

    async def clear_leftovers(self, entry: JournalEntry, since: datetime) -> None:
        message = _recorded(entry)
        oldest = max(float(message.ts), since.timestamp())
        try:
            response = await self._client.conversations_replies(
                channel=message.channel,
                ts=message.thread,
                oldest=f"{oldest:.6f}",
                inclusive=False,
                limit=_MAX_LEFTOVERS,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning(
                "could not look for a reply left cut in the thread: %s",
                error_code(exc),
                extra=entry_context(entry),
            )
            return
        for found in response.get("messages") or []:
            ts = str(found.get("ts") or "")
            mine = found.get("user") == self._bot.user_id or found.get("bot_id") == self._bot.bot_id
            if mine and ts not in (message.thread, entry.shown_ref) and float(ts) > oldest:
                logger.info(
                    "deleting a reply left cut by an earlier attempt", extra=entry_context(entry)
                )
                await self._delete(message, ts)

    async def _delete(self, message: SlackMessage, ts: str) -> None:
        await aux_call("chat.delete", self._client.chat_delete(channel=message.channel, ts=ts))

    def _sink(self, message: SlackMessage) -> ThreadSink:
        return ThreadSink(
            self._client,
            channel=message.channel,
            thread_ts=message.thread,
            team=message.team,
            user=message.user,
            gate=self._gate,
            budget=self._budget,
        )

    async def _greet(self, message: SlackMessage) -> None:
        """A mention without words: open the conversation with the agent's first message."""
        agent = await self._engine.agent_for_channel(
            platform="slack", workspace=message.team, channel=message.channel
        )
        _, created = await self._engine.open_conversation(key=message.key, agent_id=agent.id)
        self._recent.note(message.key)
        await self._post(message, agent.first_message if created else LISTENING)

    # the agent surface ---------------------------------------------------------------------

    async def stop(self, body: EventCallback) -> None:
        """A person pressed Stop (``agent_session_stopped``): the turn this process is
        answering in that thread stops, its journal entry is finished as stopped (never
        answered again), and the person is told. Slack leaves the session processing until
        the app says otherwise, so it is set back to active either way."""
        click = parse_stop(body)
        if click is None:
            logger.debug("agent_session_stopped without a thread; ignored")
            return
        context = conversation_context(
            conversation_id=await self._conversation_id_at(click.key),
            platform="slack",
            event_id=str(body.get("event_id") or "-"),
        )
        if await self._journal.request_stop(click.key):
            logger.info("Slack: a person stopped a reply", extra=context)
            await aux_call(
                "chat.postMessage",
                self._client.chat_postMessage(
                    channel=click.key.channel,
                    thread_ts=click.key.thread,
                    markdown_text=STOPPED_LINE,
                ),
            )
        else:
            logger.info("Slack: Stop pressed with no reply in progress here", extra=context)
        await self._agent.idle(click.key)

    async def _watch_stop(self, entry: JournalEntry, key: PlatformKey) -> None:
        """Stop this reply when another process was told of the Stop button."""
        while True:
            await asyncio.sleep(self._stop_poll)
            try:
                stopped = await self._journal.stopped(entry)
            except StoreError:
                continue
            if stopped:
                self._journal.stop_turn(key)
                return

    async def rate(self, body: BlockActions) -> None:
        """A feedback button was clicked under a reply: the rating is recorded (once per
        person and reply: a repeated click changes nothing) and the person thanked."""
        click = parse_feedback(body)
        if click is None:
            logger.debug("a feedback click without a reply; ignored")
            return
        rated = await self._feedback.rate(
            message_id=click.reply_id, platform="slack", person=click.user, rating=click.rating
        )
        if rated is not None and not rated.changed:
            return
        await aux_call(
            "chat.postEphemeral",
            self._client.chat_postEphemeral(
                channel=click.channel,
                user=click.user,
                thread_ts=click.thread_ts or None,
                text=THANKS_LINE if rated is not None else GONE_LINE,
            ),
        )

    async def home_opened(self, body: EventCallback) -> None:
        """Suggested prompts for the agent of a person's direct messages with the bot."""
        opened = parse_home_opened(body)
        if opened is None or opened.tab != "messages":
            return
        agent = await self._engine.agent_for_channel(
            platform="slack", workspace=opened.team, channel=opened.channel
        )
        await self._agent.prompts(opened.team, opened.channel, agent_name=agent.name)

    async def _conversation_id_at(self, key: PlatformKey) -> str:
        try:
            conversation = await self._engine.store.find_conversation(key=key)
        except Exception:  # noqa: BLE001 - only for a log line; the store may be the problem
            return "unknown"
        return conversation.id if conversation is not None else "none"

    async def assistant_thread_started(self, body: EventCallback) -> None:
        """Greet a new assistant thread with the agent's first message and suggested prompts."""
        parsed = parse_assistant_thread(body)
        if parsed is None:
            logger.debug("assistant_thread_started without a thread; ignored")
            return
        team, thread = parsed
        key = PlatformKey(
            platform="slack",
            workspace=team,
            channel=thread["channel_id"],
            thread=thread["thread_ts"],
        )
        event_id = str(body.get("event_id") or "")
        try:
            if event_id and not await self._engine.store.mark_event_processed(
                event_id=f"slack:event:{event_id}"
            ):
                return
            agent = await self._engine.agent_for_channel(
                platform="slack", workspace=team, channel=key.channel
            )
            _, created = await self._engine.open_conversation(key=key, agent_id=agent.id)
            self._recent.note(key)
            if created:
                await self._client.chat_postMessage(
                    channel=key.channel,
                    thread_ts=key.thread,
                    markdown_text=safe_markdown(agent.first_message),
                )
            await self._agent.prompts(
                key.workspace, key.channel, agent_name=agent.name, thread=key.thread
            )
        except Exception as exc:  # noqa: BLE001 - the adapter's edge: logged, one line to people
            log_failure("assistant thread not greeted", exc, {"platform": "slack"})
            await aux_call(
                "chat.postMessage",
                self._client.chat_postMessage(
                    channel=key.channel, thread_ts=key.thread, text=short_error_line(exc)
                ),
            )

    # helpers -------------------------------------------------------------------------------

    async def _report(
        self, message: SlackMessage, exc: Exception, existing: Conversation | None
    ) -> None:
        conversation_id = existing.id if existing else await self._conversation_id(message)
        context = conversation_context(
            conversation_id=conversation_id, platform="slack", event_id=message.event_id or "-"
        )
        log_failure("Slack message not answered", exc, context)
        await aux_call("chat.postMessage", self._post(message, short_error_line(exc)))

    async def _conversation_id(self, message: SlackMessage) -> str:
        return await self._conversation_id_at(message.key)

    def _ephemeral(self, message: SlackMessage) -> Notify:
        async def notify(text: str) -> None:
            await self._client.chat_postEphemeral(
                channel=message.channel, user=message.user, thread_ts=message.thread, text=text
            )

        return notify

    async def _post(self, message: SlackMessage, text: str) -> None:
        """Post Markdown (ours or the agent's) in the message's thread, as replies are."""
        await self._client.chat_postMessage(
            channel=message.channel, thread_ts=message.thread, markdown_text=safe_markdown(text)
        )


def _addressed(message: SlackMessage) -> bool:
    """Meant for the bot whatever the thread: a direct message or a mention."""
    return message.is_dm or message.mentions_bot or message.event_type == "app_mention"


def _footer(result: TurnResult) -> list[Block] | None:
    """Feedback buttons under a reply (not under an apology for a failed turn)."""
    return None if result.failed else feedback_blocks(result.reply.id)


def log_failure(what: str, exc: Exception, context: dict[str, str]) -> None:
    """Expected failures (busy, store, Slack refusing) in one line; others with a traceback,
    for the logs only."""
    if isinstance(exc, (EngineBusy, StoreError, SlackApiError)):
        detail = error_code(exc) if isinstance(exc, SlackApiError) else str(exc)
        logger.warning("%s: %s", what, detail, extra=context)
    else:
        logger.error("%s", what, exc_info=exc, extra=context)


def slack_position(ts: str) -> str:
    """A message's place in its thread's order: Slack's ``ts`` with both parts zero-padded,
    so that the journal's plain string order is Slack's order."""
    seconds, _, fraction = ts.partition(".")
    return f"{seconds.zfill(12)}.{fraction.ljust(6, '0')}"


def _recorded(entry: JournalEntry) -> SlackMessage:
    """The Slack message a journal entry was recorded from (see :meth:`MessageHandler.intake`)."""
    fields = {name: entry.message[name] for name in SlackMessage.__dataclass_fields__}
    return SlackMessage(**fields)  # type: ignore[arg-type]
