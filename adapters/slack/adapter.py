"""The Slack adapter: slack-bolt's ``AsyncApp`` over Socket Mode or HTTP, in the bot's loop.

This module is the transport and the lifecycle: the Web API client (``SLACK_API_URL``, 429s
retried by slack_sdk except for replies, which their channel's budget paces), Socket Mode
(``AsyncSocketModeHandler``) or HTTP mode (Bolt's FastAPI adapter at ``/slack/events``, the
route :mod:`adapters.slack.routes` mounts on the bot's HTTP server, requests verified with the
signing secret), and the listeners. Every event the manifest subscribes to has a listener,
since Bolt acknowledges only those, and every listener's event is subscribed (the manifest's
test checks both ways). A listener acknowledges, starts the work as a task (the tasks are
bounded) and returns: the work never delays the acknowledgement. What the work does lives in
:mod:`adapters.slack.messages` and :mod:`adapters.slack.commands`.

Health (:meth:`SlackAdapter.health`): HTTP mode is ``http`` once ``/slack/events`` is served.
In Socket Mode a watchdog asks slack_sdk's client whether its websocket is connected (open,
not stale, answering pings) every ``health_interval``: ``connected``, or ``reconnecting`` while
slack_sdk reconnects (it retries for ever). After ``reconnect_timeout`` without a connection
the adapter gives up (``failed``) and calls ``on_failure``, so that the process exits and its
supervisor starts a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.api_calls import api_call_trace, slack_method
from adapters.base import (
    BUSY_LINE,
    AdapterHealth,
    AdapterState,
    FailureHook,
    short_error_line,
)
from adapters.channel_budget import SLACK_CHANNEL_LIMIT, ChannelBudget, ChannelLimit
from adapters.http.host import WebHost
from adapters.http.server import ServerStartError
from adapters.slack.agent import aux_call
from adapters.slack.blocks import FEEDBACK, FORGET_CANCEL, FORGET_CONFIRM
from adapters.slack.commands import AgentCommands, Notify, RecentThreads, parse_agent_command
from adapters.slack.messages import MessageHandler, ReplyOptions, log_failure
from adapters.slack.payloads import (
    BlockActions,
    BotIdentity,
    EventCallback,
    SlashCommand,
    SlashCommandPayload,
    error_code,
    is_dm_channel,
    parse_button,
)
from adapters.slack.reply import StreamGate
from adapters.slack.routes import EventsHandler, SlackEvents
from adapters.slack.users import UserDirectory
from bot.engine import Engine
from bot.errors import ConfigError, ParleyError
from bot.feedback import FeedbackBook
from bot.journal import TurnJournal
from config.agents import Agent
from config.redact import redact_url
from config.settings import Settings
from memory.base import Conversation, GoalCheck

logger = logging.getLogger(__name__)

BOLT_APP_NAME = "slack_bolt.parley"
"""Bolt names its listeners' loggers after the app and pins their level: keep them in Bolt's
own logger tree, where that touches nothing of ours."""


class _SameTokenWarning(logging.Filter):
    """Bolt reads ``SLACK_BOT_TOKEN`` from the environment even when given a client, then warns
    that the token is unused; the client carries that very token, so the warning misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


_SAME_TOKEN = _SameTokenWarning()


class SlackStartError(ParleyError):
    """Slack could not be reached or refused the tokens; the message says which."""


@dataclass(frozen=True, slots=True)
class _Live:
    """What exists while the adapter runs."""

    client: AsyncWebClient
    commands: AgentCommands
    messages: MessageHandler
    bot: BotIdentity


class SlackAdapter:
    """Parley on Slack. ``await start()`` returns once connected (Socket Mode) or serving
    (HTTP mode); ``await stop()`` stops taking events and lets running replies finish."""

    name = "slack"

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        edit_interval: float = 1.0,
        stream_cooldown: float = 900.0,
        channel_limit: ChannelLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_in_flight: int = 1000,
        user_cache_size: int = 1000,
        allowed_bot_ids: frozenset[str] = frozenset(),
        http_host: str | None = None,
        web: WebHost | None = None,
        connect_timeout: float = 30.0,
        stop_grace: float = 10.0,
        rate_limit_retries: int = 3,
        on_failure: FailureHook | None = None,
        reconnect_timeout: float = 300.0,
        health_interval: float = 1.0,
        journal: TurnJournal | None = None,
        feedback: FeedbackBook | None = None,
    ) -> None:
        """
        Args:
            edit_interval: seconds between edits (or stream appends) of a growing reply.
            stream_cooldown: longest time (seconds) a workspace goes without Slack's streaming
                methods after they failed there (a minute at first, doubling while they fail).
            channel_limit: calls per channel shared by all replies there (default: Slack's
                one a second, bursts of three, paced by ``edit_interval``).
            max_in_flight: events being handled at once; beyond it people are told to retry.
            allowed_bot_ids: other bots (``bot_id``) whose messages are answered.
            http_host: interface of the HTTP mode server (default: ``HOST``).
            web: the bot's HTTP server, which HTTP mode serves ``/slack/events`` on (the route
                is mounted on it at once, answering 503 until HTTP mode serves it); without
                one the adapter starts its own (health and Slack routes only).
            on_failure: called once when Socket Mode gave up (see the module's docstring).
            reconnect_timeout: seconds without a Socket Mode connection before giving up.
            health_interval: seconds between the Socket Mode watchdog's looks.
            journal: where messages to answer are recorded before they are acknowledged (the
                runtime's, shared by all adapters); without one the adapter runs its own.
            feedback: where ratings of replies are recorded (the runtime's, watched by its
                metrics); without one the adapter records them in the engine's store alone.
        """
        if settings.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set")
        self._settings = settings
        self._engine = engine
        self._edit_interval = edit_interval
        self._max_in_flight = max_in_flight
        self._user_cache_size = user_cache_size
        self._allowed_bots = allowed_bot_ids
        self._http_host = http_host
        self._web = web
        self._own_web: WebHost | None = None
        self._events = SlackEvents(max_body=settings.slack_max_body)
        if web is not None:
            web.mount(self._events)
        self._connect_timeout = connect_timeout
        self._stop_grace = stop_grace
        self._rate_limit_retries = rate_limit_retries
        self._gate = StreamGate(cooldown=stream_cooldown, clock=clock)
        self._budget = ChannelBudget(channel_limit or SLACK_CHANNEL_LIMIT.paced(edit_interval))
        self._recent = RecentThreads(engine.store)
        self._own_journal = journal is None
        self._journal = journal or TurnJournal(engine=engine)
        self._feedback = feedback or FeedbackBook(engine.store)
        self._feedback.watch(
            lambda rated: engine.telemetry.metrics.feedback_given(rated.feedback.rating)
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._received = 0
        self._changed = asyncio.Event()
        self._live: _Live | None = None
        self._session: aiohttp.ClientSession | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._clock = clock
        self._on_failure = on_failure
        self._reconnect_timeout = reconnect_timeout
        self._health_interval = health_interval
        self._watchdog: asyncio.Task[None] | None = None
        self._state: AdapterState = "stopped"
        self._detail = "not started"

    def __repr__(self) -> str:
        return f"SlackAdapter(mode={self._settings.slack_mode!r}, api_url={self.shown_url!r})"

    @property
    def api_url(self) -> str:
        """The Web API base URL (``SLACK_API_URL``, else Slack's), with a trailing slash."""
        url = self._settings.slack_api_url or AsyncWebClient.BASE_URL
        return url if url.endswith("/") else url + "/"

    @property
    def shown_url(self) -> str:
        """:attr:`api_url` as people and logs see it: without credentials."""
        return redact_url(self.api_url)

    @property
    def feedback(self) -> FeedbackBook:
        """Where ratings of replies are recorded (watch it to count them)."""
        return self._feedback

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def wait_idle(self, *, events: int = 0) -> None:
        """Wait until at least ``events`` events arrived and nothing is being handled
        (callers bound the wait with ``asyncio.timeout``)."""
        while self._received < events or self._tasks:
            self._changed.clear()
            await self._changed.wait()
        await self._journal.wait_idle()
        while self._tasks:  # what the journal's replies set off (none today)
            self._changed.clear()
            await self._changed.wait()

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._set("connecting", "connecting to Slack")
        try:
            await self._start()
        except BaseException as exc:
            await self._shutdown(grace=0)
            if not isinstance(exc, asyncio.CancelledError):
                self._set("failed", str(exc) if isinstance(exc, ParleyError) else error_code(exc))
            raise

    async def stop(self) -> None:
        await self._shutdown(grace=self._stop_grace)

    def health(self) -> AdapterHealth:
        """The connection state, as the watchdog last saw it (see the module's docstring)."""
        return AdapterHealth(self.name, self._state, self._detail)

    def _set(self, state: AdapterState, detail: str) -> None:
        self._state, self._detail = state, detail

    async def _watch_socket(self, handler: AsyncSocketModeHandler) -> None:
        """Follow slack_sdk's connection; give up after ``reconnect_timeout`` without one."""
        client = handler.client
        lost_at: float | None = None
        while True:
            await asyncio.sleep(self._health_interval)
            if await client.is_connected():
                if lost_at is not None:
                    logger.info("Slack: Socket Mode connection is back")
                lost_at = None
                self._set("connected", "Socket Mode")
                continue
            now = self._clock()
            if lost_at is None:
                lost_at = now
                logger.warning("Slack: Socket Mode connection lost; slack_sdk is reconnecting")
            down = now - lost_at
            if down >= self._reconnect_timeout:
                break
            self._set("reconnecting", f"no Socket Mode connection for {down:.0f} s")
        problem = f"no Socket Mode connection for {down:.0f} s"
        logger.error("Slack connection lost for good: %s", problem)
        self._set("failed", problem)
        if self._on_failure is not None:
            self._on_failure(self.health())

    async def _start(self) -> None:
        token = self._settings.slack_bot_token
        if token is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set")
        self._session = aiohttp.ClientSession(
            trace_configs=[api_call_trace(self._engine.telemetry, "slack", slack_method)]
        )
        client = AsyncWebClient(
            token=token.get_secret_value(),
            base_url=self.api_url,
            session=self._session,
            retry_handlers=[
                *async_default_handlers(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=self._rate_limit_retries),
            ],
        )
        bot, authorized = await self._identify(client)
        users = UserDirectory(client, capacity=self._user_cache_size)
        commands = AgentCommands(
            engine=self._engine,
            client=client,
            users=users,
            recent=self._recent,
            bot_user_id=bot.user_id,
        )
        messages = MessageHandler(
            engine=self._engine,
            client=client,
            bot=bot,
            users=users,
            commands=commands,
            recent=self._recent,
            gate=self._gate,
            budget=self._budget,
            options=ReplyOptions(
                edit_interval=self._edit_interval, allowed_bots=self._allowed_bots
            ),
            journal=self._journal,
            feedback=self._feedback,
        )
        self._live = _Live(client=client, commands=commands, messages=messages, bot=bot)
        self._journal.register("slack", messages)
        if self._own_journal:
            await self._journal.start()
        app = self._build_app(client, authorized)
        if self._settings.slack_mode == "socket":
            await self._connect_socket(app, client)
            where = "Socket Mode"
            self._set("connected", where)
            if self._socket is not None:
                self._watchdog = asyncio.create_task(
                    self._watch_socket(self._socket), name="slack-socket-watchdog"
                )
        else:
            await self._serve_http(app)
            where = f"HTTP mode on port {self._settings.port}"
            self._set("http", "events at /slack/events")
        logger.info("Slack: connected as %s in team %s, %s", bot.user_id, bot.team_id, where)

    async def _identify(self, client: AsyncWebClient) -> tuple[BotIdentity, AuthorizeResult]:
        """Who the bot is (``auth.test``), and the same as Bolt's authorization."""
        try:
            auth = await client.auth_test()
        except SlackApiError as exc:
            raise SlackStartError(
                f"Slack refused SLACK_BOT_TOKEN ({error_code(exc)}): check the bot token (xoxb-...)"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SlackStartError(
                f"cannot reach Slack at {self.shown_url} ({error_code(exc)})"
            ) from None
        bot = BotIdentity(
            user_id=str(auth.get("user_id") or ""),
            bot_id=str(auth.get("bot_id") or ""),
            team_id=str(auth.get("team_id") or ""),
        )
        return bot, AuthorizeResult.from_auth_test_response(
            bot_token=client.token, auth_test_response=auth
        )

    def _build_app(self, client: AsyncWebClient, authorized: AuthorizeResult) -> AsyncApp:
        """Bolt's app, authorized by the ``auth.test`` made at start: left to itself, Bolt
        calls ``auth.test`` for the first events (once per event until one answers), and their
        acknowledgements wait for it. Bolt's own client carries no token (each event's client
        gets it from the authorization); its base URL and session are the adapter's."""

        async def authorize() -> AuthorizeResult:
            return authorized

        bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
        if _SAME_TOKEN not in bolt_logger.filters:
            bolt_logger.addFilter(_SAME_TOKEN)
        secret = self._settings.slack_signing_secret
        app = AsyncApp(
            name=BOLT_APP_NAME,
            client=AsyncWebClient(
                base_url=client.base_url,
                session=client.session,
                retry_handlers=client.retry_handlers,
            ),
            authorize=authorize,
            signing_secret=secret.get_secret_value() if secret is not None else "",
            process_before_response=True,  # acknowledge what is safe in the journal, only
        )
        app.event("app_mention")(self._on_message)
        app.event("message")(self._on_message)
        app.event("assistant_thread_started")(self._on_assistant_thread_started)
        app.event("assistant_thread_context_changed")(self._on_quiet_event)
        app.event("agent_session_stopped")(self._on_stop)
        app.event("app_home_opened")(self._on_home_opened)
        app.command("/agent")(self._on_agent_command)
        app.action(FORGET_CONFIRM)(self._on_forget_confirm)
        app.action(FORGET_CANCEL)(self._on_forget_cancel)
        app.action(FEEDBACK)(self._on_feedback)
        app.error(self._on_listener_error)
        return app

    async def _connect_socket(self, app: AsyncApp, client: AsyncWebClient) -> None:
        app_token = self._settings.slack_app_token
        if app_token is None:
            raise ConfigError("SLACK_APP_TOKEN: Socket Mode needs an app-level token (xapp-...)")
        handler = AsyncSocketModeHandler(app, app_token.get_secret_value(), web_client=client)
        self._socket = handler
        try:
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
        except SlackApiError as exc:
            raise SlackStartError(
                f"Slack refused SLACK_APP_TOKEN ({error_code(exc)}): Socket Mode needs an "
                "app-level token (xapp-...) with the connections:write scope"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SlackStartError(
                f"cannot reach Slack at {self.shown_url} ({error_code(exc)})"
            ) from None
        try:
            async with asyncio.timeout(self._connect_timeout):
                await handler.connect_async()  # type: ignore[no-untyped-call]
        except TimeoutError:
            raise SlackStartError(
                f"the Socket Mode connection did not open within {self._connect_timeout:g}s"
            ) from None

    async def _serve_http(self, app: AsyncApp) -> None:
        """Hand ``/slack/events`` to Bolt on the bot's HTTP server (started if need be)."""
        web = self._web
        if web is None:
            host = self._http_host or self._settings.host
            web = self._own_web = WebHost(
                host=host, port=self._settings.port, settings=self._settings
            )
            web.mount(self._events)
        self._events.handler = EventsHandler(app, stopping=lambda: self._journal.closing)
        try:
            await web.start()
        except ServerStartError as exc:
            raise SlackStartError(str(exc)) from None

    async def _shutdown(self, *, grace: float) -> None:
        """Stop taking events, let running work finish (up to ``grace``), then disconnect."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        if self._state != "failed":
            self._set("stopped", "stopped")
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close_async()  # type: ignore[no-untyped-call]
            client = socket.client
            leftovers = [
                task
                for task in (
                    client.message_processor,
                    client.current_session_monitor,
                    client.message_receiver,
                )
                if task is not None
            ]
            await asyncio.gather(*leftovers, return_exceptions=True)
        self._events.handler = None
        own, self._own_web = self._own_web, None
        if own is not None:
            await own.stop()
        if self._own_journal:  # the runtime's journal is stopped by the runtime, before this
            await self._journal.stop(grace=grace)
        self._journal.unregister("slack")
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        if self._live is not None:
            logger.info("Slack: disconnected")
        self._live = None

    async def post_goal_check(
        self, conversation: Conversation, check: GoalCheck, agent: Agent, *, channel: str | None
    ) -> None:
        """Show a scheduled goal check (:class:`bot.scheduler.GoalCheckPoster`): in the
        conversation's thread, or in ``channel`` (``post_to: slack:C0123``)."""
        await self._running().commands.post_goal_check(conversation, check, agent, channel=channel)

    async def channel_workspace(self, channel: str) -> str | None:
        """A bot token belongs to one workspace, so every channel it posts to is in that
        team; a DM is in no one's report channel."""
        if is_dm_channel(channel):
            return None
        return self._running().bot.team_id or None

    # Bolt listeners: acknowledge, start the work, return --------------------------------

    async def _on_message(self, body: EventCallback) -> None:
        """Runs before the acknowledgement (``process_before_response``): a message to
        answer is in the journal before Slack hears back, or Slack is not acknowledged."""
        self._arrived()
        messages = self._running().messages
        work = await messages.intake(body)
        if work is not None and not self._spawn(work):
            await messages.refuse(body)

    async def _on_assistant_thread_started(self, body: EventCallback) -> None:
        self._arrived()
        self._spawn(self._running().messages.assistant_thread_started(body))

    async def _on_stop(self, body: EventCallback) -> None:
        self._arrived()
        self._spawn(self._guard_event("Slack stop", self._running().messages.stop(body)))

    async def _on_home_opened(self, body: EventCallback) -> None:
        self._arrived()
        self._spawn(self._guard_event("Slack app home", self._running().messages.home_opened(body)))

    async def _on_feedback(self, ack: AsyncAck, body: BlockActions) -> None:
        await ack()
        self._arrived()
        self._spawn(self._guard_event("Slack feedback", self._running().messages.rate(body)))

    async def _on_quiet_event(self) -> None:
        """Subscribed for the assistant surface; nothing to do but acknowledge."""
        self._arrived()

    async def _on_listener_error(self, error: Exception, body: dict[str, Any]) -> None:
        """A listener failed before the acknowledgement, which is then not sent (so Slack
        sends the event again): a message the store could not take, typically. Expected
        failures in one line, as at the adapter's other edges (Bolt's own handler logs each
        with a traceback)."""
        event_id = str(body.get("event_id") or "-")
        log_failure(
            "Slack event not acknowledged", error, {"platform": "slack", "event_id": event_id}
        )

    async def _on_agent_command(
        self, ack: AsyncAck, body: SlashCommandPayload, respond: AsyncRespond
    ) -> None:
        self._arrived()
        live = self._running()
        command = SlashCommand.from_payload(body)
        parsed = parse_agent_command(command.text)
        if parsed is None or parsed.verb == "help":
            await ack(text=live.commands.usage)
            return
        await ack()
        notify = _responder(respond)
        work = partial(live.commands.slash, command, respond)
        if not self._spawn(self._guard_command(work, notify)):
            await notify(BUSY_LINE)

    async def _on_forget_confirm(
        self, ack: AsyncAck, body: BlockActions, respond: AsyncRespond
    ) -> None:
        await ack()
        self._arrived()
        notify = _responder(respond)
        commands = self._running().commands

        async def work() -> None:
            await commands.forget_confirmed(parse_button(body), respond)

        if not self._spawn(self._guard_command(work, notify)):
            await notify(BUSY_LINE)

    async def _on_forget_cancel(self, ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        self._arrived()
        notify = _responder(respond)
        work = partial(self._running().commands.forget_cancelled, respond)
        if not self._spawn(self._guard_command(work, notify)):
            await notify(BUSY_LINE)

    # helpers -------------------------------------------------------------------------------

    def _running(self) -> _Live:
        if self._live is None:
            raise RuntimeError("the Slack adapter is not running")
        return self._live

    def _arrived(self) -> None:
        self._received += 1
        self._changed.set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run ``work`` after the acknowledgement; False (and ``work`` dropped) when full."""
        if len(self._tasks) >= self._max_in_flight:
            work.close()
            logger.warning("%d Slack events in flight; refusing another", len(self._tasks))
            return False
        task = asyncio.create_task(_logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        self._changed.set()
        return True

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._changed.set()

    async def _guard_event(self, what: str, work: Awaitable[None]) -> None:
        """Run work that has no one to answer: its failure is logged in one line."""
        try:
            await work
        except Exception as exc:  # noqa: BLE001 - the adapter's edge: logged
            log_failure(f"{what} failed", exc, {"platform": "slack"})

    async def _guard_command(self, work: Callable[[], Awaitable[None]], notify: Notify) -> None:
        """Run a command's work (made only once the task runs) and answer its failure."""
        try:
            await work()
        except Exception as exc:  # noqa: BLE001 - the adapter's edge: logged, one line to people
            log_failure("Slack command failed", exc, {"platform": "slack"})
            await aux_call("respond", notify(short_error_line(exc)))


async def _logged(work: Awaitable[None]) -> None:
    """The last line of defence of a spawned task: nothing escapes unlogged."""
    try:
        await work
    except Exception:
        logger.exception("Slack handler failed")


def _responder(respond: AsyncRespond) -> Notify:
    async def notify(text: str) -> None:
        await respond(text=text)

    return notify
