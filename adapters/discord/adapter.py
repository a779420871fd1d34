"""The Discord adapter: discord.py's gateway client in the bot's event loop.

It translates and nothing more. A message a person writes where Parley answers (see
:mod:`adapters.discord.routing`) becomes an :class:`IncomingMessage` for the conversation of
its channel; the turn is shown with a typing indicator and throttled edits
(:mod:`adapters.discord.reply`). Slash commands live in :mod:`adapters.discord.commands`.
Anything that goes wrong stops here: it is logged with the conversation and the person sees
one short line. discord.py handles rate limits (it waits out every 429), reconnects and resumes.

Health (:meth:`DiscordAdapter.health`): ``connecting`` until the gateway is READY (including a
wait for the session start limit), ``connected`` while every shard's connection is open,
``reconnecting`` while discord.py reconnects or resumes, ``failed`` once it gave up (a close
code it does not retry, such as 4004 for a reset token): then ``on_failure`` is called, so that
the process exits and its supervisor restarts it. Before each start the token's
``session_start_limit`` is read; when fewer IDENTIFYs remain than the shards need plus a small
reserve, the start waits for the limit to reset instead of burning them (a crash loop of a
sharded bot could otherwise use up the day's 1,000).

Settings: ``DISCORD_BOT_TOKEN`` (secret), ``DISCORD_API_URL`` (another API, see
:mod:`adapters.discord.endpoints`), ``DISCORD_SHARDED`` (discord.py's ``AutoShardedClient``)
``DISCORD_THREAD_ON_MENTION`` and ``DISCORD_COMMAND_SYNC`` (see :mod:`adapters.discord.sync`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Final

import aiohttp

from adapters.api_calls import api_call_trace, discord_method
from adapters.base import (
    AdapterHealth,
    AdapterState,
    FailureHook,
    short_error_line,
)
from adapters.channel_budget import DISCORD_CHANNEL_LIMIT, ChannelBudget, ChannelLimit
from adapters.discord import endpoints
from adapters.discord.commands import STARTED_BY, AgentTree, command_tree, goal_embed
from adapters.discord.discordpy import describe, discord
from adapters.discord.messages import DiscordTurns, discord_position, entry_message
from adapters.discord.payloads import (
    attachment_note,
    is_from_a_person,
    mentions,
    read_message,
    replies_to,
    thread_name,
)
from adapters.discord.reply import NO_MENTIONS, rate_limit_trace
from adapters.discord.routing import Place, bound_agent, key_for, place_of
from adapters.discord.sync import sync_commands
from bot.engine import Engine, EngineBusy
from bot.errors import ConfigError, ParleyError, StoreError
from bot.journal import CATCHING_UP_LINE, TurnJournal
from bot.locks import KeyedLocks
from bot.logs import context_of, conversation_context
from config.agents import Agent
from config.redact import redact_url
from config.settings import Settings
from memory.base import Conversation, GoalCheck, NewJournalEntry, PlatformKey

logger = logging.getLogger(__name__)

THREAD_ARCHIVE_MINUTES: Final = 1440
IDENTIFY_INTERVAL: Final = 5.0
"""Seconds discord.py waits before each IDENTIFY but the first (its ``before_identify_hook``):
it identifies one shard at a time, whatever ``max_concurrency`` allows."""
IDENTIFY_RESERVE: Final = 2
"""Session starts kept in hand beyond what the shards need (re-identifies after an invalidated
session, another process on the same token)."""
LIMIT_WAIT_CAP: Final = 300.0
"""Longest single wait for the session start limit; then Discord is asked again."""
LIMIT_RECHECK: Final = 1.0
"""Shortest wait before asking again (Discord may say ``reset_after: 0`` a little early)."""


def intents(*, content: bool = True) -> discord.Intents:
    """Servers, their messages, DMs, and with ``content`` message content (a privileged
    intent: it must be switched on for the application in the Developer Portal)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = content
    return wanted


CONTENT_FALLBACK_LINE = (
    "Discord refused the Message Content intent: answering only mentions of the bot and "
    "direct messages (they carry their content). To answer every message in bound channels, "
    "threads and replies, switch on MESSAGE CONTENT INTENT for the application in the "
    "Developer Portal (Bot page, Privileged Gateway Intents) and restart"
)


class _ContentRefused(Exception):
    """The gateway closed with 4014: the application may not have message content."""


class DiscordAdapter:
    """Connects to Discord, answers messages and the ``/agent`` commands."""

    name = "discord"

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        edit_interval: float = 1.0,
        channel_limit: ChannelLimit | None = None,
        ready_timeout: float = 60.0,
        guild_ready_timeout: float = 2.0,
        stop_timeout: float = 10.0,
        on_failure: FailureHook | None = None,
        identify_reserve: int = IDENTIFY_RESERVE,
        limit_wait_cap: float = LIMIT_WAIT_CAP,
        journal: TurnJournal | None = None,
        max_intake: int = 1000,
    ) -> None:
        """``edit_interval``: seconds between edits of a growing reply. ``ready_timeout``:
        how long :meth:`start` waits for the gateway with one shard; each further shard adds
        :data:`IDENTIFY_INTERVAL` and every shard ``guild_ready_timeout``
        (:meth:`ready_timeout_for`). ``guild_ready_timeout``: discord.py's wait for more
        servers after the last one arrived, before it is ready. ``on_failure``: called once
        when the connection is lost for good after a successful start. ``journal``: where
        messages to answer are recorded as they arrive (the runtime's, shared by all adapters;
        without one the adapter runs its own). ``max_intake``: messages being read and recorded
        at once; beyond it people are told the bot is busy."""
        if settings.discord_bot_token is None:
            raise ConfigError("DISCORD_BOT_TOKEN is not set")
        self._token = settings.discord_bot_token
        self._api_url = settings.discord_api_url
        self._sharded = settings.discord_sharded
        self._thread_on_mention = settings.discord_thread_on_mention
        self._command_sync = settings.discord_command_sync
        self._engine = engine
        self._edit_interval = edit_interval
        self._budget = ChannelBudget(channel_limit or DISCORD_CHANNEL_LIMIT.paced(edit_interval))
        """Posts and edits per channel, shared by all replies there (``channel_limit``, by
        default Discord's five in five seconds, paced by ``edit_interval``)."""
        self._ready_timeout = ready_timeout
        self._guild_ready_timeout = guild_ready_timeout
        self._stop_timeout = stop_timeout
        self._client: discord.Client | None = None
        self._tree: AgentTree | None = None
        self._gateway: asyncio.Task[None] | None = None
        self._previous: endpoints.Endpoints | None = None
        self._on_failure = on_failure
        self._identify_reserve = identify_reserve
        self._limit_wait_cap = limit_wait_cap
        self._state: AdapterState = "stopped"
        self._detail = "not started"
        self._stopping = False
        self._own_journal = journal is None
        self._journal = journal or TurnJournal(engine=engine)
        self._turns = DiscordTurns(
            lambda: self._client, journal=self._journal, budget=self._budget, interval=edit_interval
        )
        self._max_intake = max_intake
        self._intake = 0
        self._arrivals = KeyedLocks()
        """One per channel: its messages are recorded in the order they arrived."""
        self._content = True
        """Whether Discord sends the content of every message (the Message Content intent);
        without it only mentions and DMs carry theirs, so only they are answered."""

    def __repr__(self) -> str:
        api = redact_url(self._api_url or "") or "discord.com"
        return f"DiscordAdapter(api={api}, sharded={self._sharded})"

    @property
    def user_id(self) -> int | None:
        """The bot's user id, once logged in."""
        user = self._client.user if self._client is not None else None
        return user.id if user is not None else None

    # lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, register the slash commands, connect; returns once the gateway is READY.

        This is ``client.start(token)`` (login, then connect in a task) with the gateway
        lookup (``GET /gateway/bot``: the gateway for ``DISCORD_API_URL``, the shard count and
        the session start limit, waited for when low), and the command sync in between.
        When Discord refuses the Message Content intent (close code 4014), it warns and
        connects again without it: then only mentions and DMs are answered.
        Raises :class:`ParleyError` with one readable line (wrong token, gateway not ready in
        time), after cleaning up. Cancelling it (a shutdown while it waits) cleans up too.
        """
        if self._client is not None:
            raise RuntimeError("the Discord adapter is already started")
        self._stopping = False
        self._content = True
        self._set("connecting", "logging in")
        if self._api_url:
            self._previous = endpoints.use_api(self._api_url)
        client = self._build_client()
        self._client = client
        try:
            await self._login(client)
            gateway = await endpoints.ask_gateway(client.http)
            if self._api_url:
                endpoints.use_gateway(gateway.url)
                logger.info(
                    "Discord API %s, gateway %s",
                    redact_url(self._api_url),
                    redact_url(str(gateway.url)),
                )
            shards = gateway.shards if self._sharded else 1
            self._journal.register("discord", self._turns)
            if self._own_journal:
                await self._journal.start()
            await self._sync_commands(client)
            await self._await_session_starts(client, gateway, shards)
            self._set("connecting", f"identifying {_shards(shards)}")
            try:
                await self._connect(client, within=self.ready_timeout_for(shards))
            except _ContentRefused:
                logger.warning(CONTENT_FALLBACK_LINE)
                client = await self._without_content(client)
                self._set("connecting", f"identifying {_shards(shards)} without message content")
                await self._connect(client, within=self.ready_timeout_for(shards))
        except BaseException as exc:
            await self.stop()
            if not isinstance(exc, asyncio.CancelledError):
                self._set("failed", str(exc) if isinstance(exc, ParleyError) else describe(exc))
            raise

    async def stop(self) -> None:
        """Disconnect. Turns already running finish in the engine."""
        self._stopping = True
        if self._own_journal:  # the runtime's journal is stopped by the runtime, before this
            await self._journal.stop(grace=self._stop_timeout)
        self._journal.unregister("discord")
        client, self._client = self._client, None
        gateway, self._gateway = self._gateway, None
        self._tree = None
        try:
            if client is not None:
                await client.close()
            if gateway is not None:
                _, late = await asyncio.wait({gateway}, timeout=self._stop_timeout)
                for task in late:
                    task.cancel()
                await asyncio.gather(gateway, return_exceptions=True)
        finally:
            if self._state != "failed":
                self._set("stopped", "stopped")
            previous, self._previous = self._previous, None
            if previous is not None:
                endpoints.restore(previous)

    def ready_timeout_for(self, shards: int) -> float:
        """How long :meth:`start` waits for READY with ``shards`` shards: discord.py identifies
        them one by one, :data:`IDENTIFY_INTERVAL` apart, and each waits up to
        ``guild_ready_timeout`` for its servers."""
        shards = max(1, shards)
        return (
            self._ready_timeout
            + (shards - 1) * IDENTIFY_INTERVAL
            + shards * self._guild_ready_timeout
        )

    # health ------------------------------------------------------------------------------

    def health(self) -> AdapterHealth:
        """The gateway's state now: see the module's docstring."""
        client = self._client
        if self._state != "connected" or client is None:
            return AdapterHealth(self.name, self._state, self._detail)
        if client.is_closed():
            return AdapterHealth(self.name, "reconnecting", "the gateway connection is closed")
        if isinstance(client, discord.AutoShardedClient):
            shards = client.shards
            total = len(shards) or 1
            open_ = sum(1 for shard in shards.values() if not shard.is_closed())
        else:
            total = 1
            open_ = 1 if client.ws is not None and client.ws.open else 0
        if not client.is_ready() or open_ < total:
            detail = f"{open_}/{total} gateway connection(s) open; discord.py is reconnecting"
            return AdapterHealth(self.name, "reconnecting", detail)
        latency = client.latency
        beat = f", heartbeat {latency * 1000:.0f} ms" if math.isfinite(latency) else ""
        scope = "" if self._content else "; mentions and DMs only (no Message Content intent)"
        return AdapterHealth(
            self.name,
            "connected",
            f"{len(client.guilds)} servers, {_shards(total)} open{beat}{scope}",
        )

    def _set(self, state: AdapterState, detail: str) -> None:
        self._state, self._detail = state, detail

    async def _await_session_starts(
        self, client: discord.Client, gateway: endpoints.GatewayInfo, shards: int
    ) -> None:
        """Wait while the token has fewer session starts left than ``shards`` need plus
        :data:`IDENTIFY_RESERVE`: a restart loop must not burn the day's IDENTIFYs. Each wait
        lasts until the limit resets (at most ``limit_wait_cap``), then Discord is asked
        again. Cancelled by a shutdown."""
        told = False
        while True:
            limit = gateway.limit
            needed = min(shards + self._identify_reserve, limit.total)
            if limit.remaining >= needed:
                return
            wait = max(LIMIT_RECHECK, min(limit.reset_after, self._limit_wait_cap))
            detail = (
                f"waiting {wait:.1f} s: {limit.remaining} of {limit.total} Discord session "
                f"starts left until the limit resets in {limit.reset_after:.1f} s, "
                f"{_shards(shards)} to identify"
            )
            self._set("connecting", detail)
            if not told:
                logger.warning("Discord session start limit is low; %s", detail)
                told = True
            else:
                logger.debug("still %s", detail)
            await asyncio.sleep(wait)
            gateway = await endpoints.ask_gateway(client.http)

    async def _without_content(self, refused: discord.Client) -> discord.Client:
        """Close the client Discord refused and log in again with one that does not ask for
        message content."""
        self._content = False
        await refused.close()
        client = self._build_client()
        self._client = client
        await self._login(client)
        return client

    def _build_client(self) -> discord.Client:
        kind = discord.AutoShardedClient if self._sharded else discord.Client
        client = kind(
            intents=intents(content=self._content),
            allowed_mentions=NO_MENTIONS,
            # No message cache: a reply arrives with the message it answers in its payload,
            # and nothing here looks a message up; discord.py's default keeps 1,000.
            max_messages=None,
            guild_ready_timeout=self._guild_ready_timeout,
            http_trace=api_call_trace(
                self._engine.telemetry, "discord", discord_method, rate_limit_trace(self._budget)
            ),
        )
        self._tree = command_tree(client, self._engine)

        @client.event
        async def on_message(message: discord.Message) -> None:
            await self._on_message(message)

        return client

    async def _login(self, client: discord.Client) -> None:
        try:
            await client.login(self._token.get_secret_value())
        except discord.LoginFailure:
            raise ParleyError(
                "Discord refused DISCORD_BOT_TOKEN: copy the bot's token again from the "
                "Developer Portal (Bot page, Reset Token)"
            ) from None
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise ParleyError(
                f"could not log in to Discord at {endpoints.Route.BASE}: {describe(exc)}"
            ) from exc

    async def _sync_commands(self, client: discord.Client) -> None:
        """Register the ``/agent`` commands as ``DISCORD_COMMAND_SYNC`` says
        (:mod:`adapters.discord.sync`). A failure is logged, not fatal: people can still talk
        to the agents."""
        if self._tree is None or client.application_id is None:
            return
        await sync_commands(
            self._tree,
            store=self._engine.store,
            mode=self._command_sync,
            application_id=client.application_id,
        )

    async def _connect(self, client: discord.Client, *, within: float) -> None:
        """Run the gateway connection in a task and wait until discord.py is ready (it has
        every server of the READY), or the connection failed, or the time is up.

        ``wait_until_ready`` rather than an ``on_ready`` handler: discord.py schedules handlers
        on a loop it forgets at close, so a READY just before :meth:`stop` would leave a
        handler coroutine that never runs.
        """
        gateway = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        gateway.add_done_callback(self._gateway_ended)
        self._gateway = gateway
        ready = asyncio.create_task(client.wait_until_ready(), name="discord-ready")
        try:
            done, _ = await asyncio.wait(
                {gateway, ready}, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
            await asyncio.gather(ready, return_exceptions=True)
        if ready in done and not gateway.done():
            self._set("connected", "")
            user = client.user
            logger.info(
                "connected to Discord as %s (%d servers)",
                user.name if user is not None else "?",
                len(client.guilds),
            )
            return
        if gateway in done:
            failure = gateway.exception()
            if isinstance(failure, discord.PrivilegedIntentsRequired) and self._content:
                raise _ContentRefused from failure
            raise ParleyError(_gateway_failure(failure))
        raise ParleyError(f"the Discord gateway was not ready after {within:g} seconds")

    def _gateway_ended(self, task: asyncio.Task[None]) -> None:
        """After a READY, a connection that ends by itself (not by :meth:`stop`) is fatal for
        Discord: discord.py gave up reconnecting. Say so loudly, turn unready and tell the
        runtime (``on_failure``), which stops the process with a non-zero status."""
        if task.cancelled() or self._stopping or self._state != "connected":
            return
        exc = task.exception()
        problem = (
            _gateway_failure(exc) if exc is not None else "the Discord gateway connection ended"
        )
        logger.error("Discord connection lost for good: %s", problem)
        self._set("failed", problem)
        if self._on_failure is not None:
            self._on_failure(self.health())

    # goal checks -----------------------------------------------------------------------

    async def post_goal_check(
        self, conversation: Conversation, check: GoalCheck, agent: Agent, *, channel: str | None
    ) -> None:
        """Show a scheduled goal check as an embed: in the conversation's own channel or
        thread, or in ``channel`` (an agent's ``post_to: discord:ID``). Raises when Discord
        refuses, so that the scheduler tries again on its next run."""
        client = self._client
        if client is None:
            raise ParleyError("the Discord adapter is not running")
        elsewhere = channel is not None and channel != conversation.key.channel
        target = client.get_partial_messageable(int(channel or conversation.key.channel))
        place = f"<#{conversation.key.channel}> · `{conversation.id}`" if elsewhere else None
        await target.send(embed=goal_embed(agent, check, place=place), allowed_mentions=NO_MENTIONS)
        logger.debug("goal check posted", extra=context_of(conversation))

    async def channel_workspace(self, channel: str) -> str | None:
        """The guild of a report channel (from the cache, else asked once of Discord); None
        for a DM channel or one Discord does not show this bot."""
        client = self._client
        if client is None or not channel.isdigit():
            return None
        found = client.get_channel(int(channel))
        if found is None:
            try:
                found = await client.fetch_channel(int(channel))
            except discord.HTTPException:
                return None
        guild = getattr(found, "guild", None)
        return None if guild is None else str(guild.id)

    # messages --------------------------------------------------------------------------

    async def _on_message(self, message: discord.Message) -> None:
        """The edge for messages: nothing escapes but cancellation."""
        bot_id = self.user_id
        if bot_id is None or self._client is None or not is_from_a_person(message):
            return
        key: PlatformKey | None = None
        if self._intake >= self._max_intake:
            await self._fail(message, None, EngineBusy("too many Discord messages at once"))
            return
        self._intake += 1
        pause, told = 0.5, False
        try:
            # a message held for the store holds the later ones of its channel too: recorded
            # (so answered) in the order Discord sent them
            async with self._arrivals.hold(str(message.channel.id)):
                while True:
                    try:
                        answer = await self._should_answer(message, self._client, bot_id)
                        if answer is None:
                            return
                        place, agent = answer
                        key = place.key
                        await self._answer(message, place, agent, bot_id)
                    except StoreError as exc:
                        # Discord never sends it again: it waits here for the store (bounded by
                        # max_intake), the person told once
                        if self._stopping:
                            raise
                        logger.warning(
                            "Discord message %s waits for the store: %s", message.id, exc
                        )
                        if not told:
                            told = True
                            await message.channel.send(
                                CATCHING_UP_LINE,
                                reference=message.to_reference(fail_if_not_exists=False),
                                allowed_mentions=NO_MENTIONS,
                            )
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, 30.0)
                    else:
                        return
        except Exception as exc:  # noqa: BLE001 - the adapter's edge: logged in _fail, one line shown
            await self._fail(message, key, exc)
        finally:
            self._intake -= 1

    async def _should_answer(
        self, message: discord.Message, client: discord.Client, bot_id: int
    ) -> tuple[Place, Agent | None] | None:
        """The message's place and bound agent when Parley answers it, else None."""
        place = await place_of(message, client)
        if place.is_dm:
            return place, None
        if not self._content and not mentions(message, bot_id):
            return None  # Discord sent it without its content
        addressed = mentions(message, bot_id) or replies_to(message, bot_id)
        try:
            agent = await bound_agent(self._engine, place)
        except ParleyError:
            if not addressed:  # unsure whether it was for us: stay quiet
                logger.warning("could not read channel bindings; message left unanswered")
                return None
            raise
        if addressed or agent is not None or place.opened_by(bot_id):
            return place, agent
        return None

    async def _answer(
        self, message: discord.Message, place: Place, agent: Agent | None, bot_id: int
    ) -> None:
        """Read the message and record it in the journal, which answers it in order."""
        event_id = f"discord:{message.id}"
        read = await read_message(message, bot_id)
        if not read.text:
            if read.skipped_attachments:
                await message.channel.send(
                    attachment_note(read),
                    reference=message.to_reference(fail_if_not_exists=False),
                    allowed_mentions=NO_MENTIONS,
                )
            return
        channel_id, key = message.channel.id, place.key
        reply_to: int | None = message.id
        if self._opens_thread(message, place, agent, bot_id):
            thread = await self._open_thread(message, place, read.text)
            if thread is not None:
                channel_id, reply_to, key = thread.id, None, key_for(place.guild_id, thread.id)
        entry = NewJournalEntry(
            id=event_id,
            key=key,
            position=discord_position(message.id),
            message=entry_message(
                text=read.text,
                author_id=message.author.id,
                author_name=message.author.display_name,
                channel_id=channel_id,
                message_id=message.id,
                reply_to=reply_to,
                agent_id=agent.id if agent is not None else None,
            ),
        )
        if await self._journal.record(entry):
            self._journal.kick(key)
        else:
            logger.debug("message %s already recorded (a replayed event)", message.id)

    def _opens_thread(
        self, message: discord.Message, place: Place, agent: Agent | None, bot_id: int
    ) -> bool:
        """With ``DISCORD_THREAD_ON_MENTION``, a mention in an unbound guild text channel
        moves the conversation into a thread started from the message."""
        return (
            self._thread_on_mention
            and place.can_start_threads
            and agent is None
            and mentions(message, bot_id)
        )

    async def _open_thread(
        self, message: discord.Message, place: Place, text: str
    ) -> discord.Thread | None:
        """A thread from the message, its conversation recording who it was opened for.
        None (answer in the channel) when Discord refuses."""
        try:
            thread = await message.create_thread(
                name=thread_name(text), auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as exc:
            logger.warning("could not open a thread (%s); answering in the channel", describe(exc))
            return None
        store = self._engine.store
        conversation, _ = await store.get_or_create_conversation(
            key=key_for(place.guild_id, thread.id), agent_id=self._engine.agents.default.id
        )
        await store.update_conversation(
            conversation_id=conversation.id,
            data={**conversation.data, STARTED_BY: str(message.author.id)},
        )
        return thread

    async def _fail(
        self, message: discord.Message, key: PlatformKey | None, exc: Exception
    ) -> None:
        """Log the failure with the conversation, and tell the person in one short line."""
        conversation_id = ""
        if key is not None:
            with contextlib.suppress(Exception):  # the store may be what failed
                found = await self._engine.store.find_conversation(key=key)
                conversation_id = found.id if found is not None else ""
        logger.warning(
            "could not answer a Discord message: %s",
            describe(exc),
            exc_info=None if isinstance(exc, EngineBusy) else exc,  # a refusal, not a fault
            extra=conversation_context(
                conversation_id=conversation_id,
                platform="discord",
                event_id=f"discord:{message.id}",
            ),
        )
        try:
            await message.channel.send(
                short_error_line(exc),
                reference=message.to_reference(fail_if_not_exists=False),
                allowed_mentions=NO_MENTIONS,
            )
        except (discord.DiscordException, aiohttp.ClientError, OSError) as error:
            logger.warning("could not tell the person either: %s", describe(error))


def _shards(count: int) -> str:
    return "1 shard" if count == 1 else f"{count} shards"


def _gateway_failure(exc: BaseException | None) -> str:
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return (
            "Discord refused the Message Content intent: switch on MESSAGE CONTENT INTENT for "
            "the application in the Developer Portal (Bot page, Privileged Gateway Intents)"
        )
    if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
        return "the Discord gateway refused DISCORD_BOT_TOKEN"
    if exc is None:
        return "the Discord gateway connection ended before it was ready"
    return f"could not connect to the Discord gateway: {describe(exc)}"
