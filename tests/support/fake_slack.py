"""A fake Slack on 127.0.0.1 for the unmodified ``slack_sdk`` and ``slack_bolt``.

One aiohttp server speaks the wire protocols the adapter uses:

* the Web API: ``POST /api/<method>`` with form, query or JSON arguments and a bearer token,
  answered ``{"ok": true, ...}`` in the shapes Slack documents (``chat.postMessage`` returns
  ``ts``, ``channel`` and ``message``...), or ``{"ok": false, "error": ...}``;
* Socket Mode: ``apps.connections.open`` (app-level token) returns this server's ``ws://``
  URL; the websocket greets with ``hello``, carries envelopes ``{"envelope_id", "type",
  "payload", "accepts_response_payload", "retry_attempt", "retry_reason"}`` and records the
  ``{"envelope_id": ...}`` acknowledgements (with their timing); envelopes go on the newest
  connection, or on a random open one with ``spread`` (several processes sharing one app), and
  with ``redelivery`` an Events API envelope nobody acknowledged is sent again, as Slack does;
* the URLs Slack hands out: ``response_url`` for commands and actions, and the upload URL of
  ``files.getUploadURLExternal``.

Every call is recorded. The bot's messages are kept as Slack would show them (posted,
updated, streamed, deleted; ``markdown_text`` and ``markdown`` blocks read as the Markdown
Slack renders), so a test can read a thread whichever way the reply arrived. The agent
surface (``agents.sessions.*``, ``assistant.threads.*``) is checked and recorded; its events
(``agent_session_stopped``, ``app_home_opened``) and feedback-button clicks have builders.
Failures are scripted per method (:meth:`FakeSlack.fail`), e.g. a 429 with ``Retry-After``.

Point the adapter at it through settings only: ``SLACK_API_URL=fake.api_url``.
Payload builders (:func:`message_event`, :func:`event_callback`...) follow the shapes of
Slack's documentation. :func:`signed_headers` signs HTTP-mode requests as Slack does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import pytest
from aiohttp import WSMsgType, web

from tests.support.loopback import serve_on_loopback

T = TypeVar("T")

TEAM = "T0FAKE001"
BOT_USER = "U0PARLEY"
BOT_ID = "B0PARLEY"
APP_ID = "A0PARLEY"
BOT_TOKEN = "xoxb-fake-bot-token-0001"
APP_TOKEN = "xapp-1-fake-app-token-0001"
SIGNING_SECRET = "fake-signing-secret-0001"
WAIT = 15.0
"""Seconds a test waits for something the fake should record (generous: CI machines vary)."""

_ids = itertools.count(1)
_last_ts = 0
"""The latest timestamp given, in microseconds."""


def new_ts() -> str:
    """A unique, increasing Slack timestamp: the wall clock's seconds and microseconds, as
    Slack's are (the bot compares them with its own clock)."""
    global _last_ts  # noqa: PLW0603 - one sequence for every fake in the process
    _last_ts = max(time.time_ns() // 1000, _last_ts + 1)
    seconds, micros = divmod(_last_ts, 1_000_000)
    return f"{seconds}.{micros:06d}"


def _new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):08X}"


@dataclass
class ApiCall:
    """One Web API request as the server received it."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float


@dataclass
class Envelope:
    """One Socket Mode envelope sent, and its acknowledgement."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    sent_at: float
    acked_at: float | None = None
    ack_payload: dict[str, Any] | None = None
    connection: int = 0
    """Which websocket carried it: 1 for the first connection opened, 2 for the next..."""
    retry_attempt: int = 0

    @property
    def ack_seconds(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent_at


@dataclass
class BotMessage:
    """A message the bot posted (or streamed), as Slack shows it now."""

    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[dict[str, Any]] | None = None
    streamed: bool = False
    streaming: bool = False
    updates: int = 0
    deleted: bool = False
    markdown: bool = False
    """``text`` is Markdown Slack renders (streamed, ``markdown_text``, a ``markdown`` block)."""


@dataclass(frozen=True)
class Redelivery:
    """When Slack sends an Events API envelope again while no attempt of it was acknowledged.

    Slack waits three seconds for the acknowledgement, then retries three times: nearly at
    once, after a minute and after five minutes (``retry_attempt`` 1..3, ``retry_reason``
    ``timeout``), on any of the app's connections. Tests shorten the schedule.
    """

    after: tuple[float, ...] = (3.0, 60.0, 300.0)
    """Seconds after the first delivery at which each retry goes."""


@dataclass
class Failure:
    error: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1
    """How many calls fail; None: every call."""


@dataclass
class Upload:
    file_id: str
    filename: str
    content: bytes = b""
    title: str = ""
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


class FakeSlack:
    """The server. ``await start()`` / ``await stop()``, or ``async with``."""

    def __init__(
        self,
        *,
        team_id: str = TEAM,
        bot_user_id: str = BOT_USER,
        bot_id: str = BOT_ID,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        spread: random.Random | None = None,
        redelivery: Redelivery | None = None,
        api_latency: float = 0.0,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_token = bot_token
        self.app_token = app_token
        self.streaming_enabled = True
        """False: ``chat.startStream`` answers ``unknown_method`` (older Slack, GovSlack...)."""
        self.calls: list[ApiCall] = []
        self.messages: list[BotMessage] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        """JSON posted to response URLs, each with ``_url``."""
        self.uploads: dict[str, Upload] = {}
        self.envelopes: list[Envelope] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.base_url = ""
        self.spread = spread
        """Send each envelope on a random open connection, drawn from this (None: the newest
        connection). Slack spreads an app's envelopes over its connections."""
        self.redelivery = redelivery
        """Send unacknowledged Events API envelopes again (None: never)."""
        self.api_latency = api_latency
        """Seconds every Web API call takes before it is answered (Slack's own time)."""
        self.held_answers: dict[str, asyncio.Event] = {}
        """Methods whose calls take effect at once but are answered only once the event is
        set: a caller that dies meanwhile never learns what its call did."""
        self._failures: dict[str, list[Failure]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_numbers: dict[int, int] = {}
        self._redeliveries: set[asyncio.Task[None]] = set()
        self._connections = 0
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # configuration -----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The Web API base, as ``SLACK_API_URL`` takes it."""
        return f"{self.base_url}/api/"

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/link/?ticket=fake-ticket"

    def add_user(
        self,
        user_id: str,
        display_name: str,
        *,
        admin: bool = False,
        owner: bool = False,
        team_id: str | None = None,
    ) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": display_name.lower(),
            "deleted": False,
            "real_name": f"{display_name} Example",
            "tz": "Europe/London",
            "is_admin": admin,
            "is_owner": owner,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": False,
            "is_app_user": False,
            "profile": {
                "display_name": display_name,
                "real_name": f"{display_name} Example",
                "team": team_id or self.team_id,
            },
        }

    def fail(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (None: all of them)."""
        self._failures.setdefault(method, []).append(
            Failure(error=error, status=status, headers=headers or {}, times=times)
        )

    def response_url(self) -> str:
        return f"{self.base_url}/respond/{_new_id('R')}"

    # what happened -----------------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[BotMessage]:
        """The bot's visible messages in a thread (its root too, if the bot posted it)."""
        return [
            message
            for message in self.messages
            if message.channel == channel
            and not message.deleted
            and thread_ts in (message.thread_ts, message.ts)
        ]

    def thread_texts(self, channel: str, thread_ts: str) -> list[str]:
        return [message.text for message in self.thread(channel, thread_ts)]

    def message(self, channel: str, ts: str) -> BotMessage | None:
        for message in self.messages:
            if message.channel == channel and message.ts == ts:
                return message
        return None

    def stop_streams(self, channel: str, thread_ts: str) -> list[str]:
        """End the bot's open streams in a thread, as Slack does when a person presses Stop;
        their ``ts``, for the ``agent_session_stopped`` event."""
        stopped = [m for m in self.thread(channel, thread_ts) if m.streaming]
        for message in stopped:
            message.streaming = False
        return [message.ts for message in stopped]

    async def wait_for(self, predicate: Callable[[], T], *, within: float = WAIT) -> T:
        """Wait until ``predicate()`` is truthy (checked whenever the fake records something)."""
        async with asyncio.timeout(within):
            while True:
                value = predicate()
                if value:
                    return value
                self._changed.clear()
                await self._changed.wait()

    async def wait_calls(
        self, method: str, *, count: int = 1, within: float = WAIT
    ) -> list[ApiCall]:
        return await self.wait_for(
            lambda: calls if len(calls := self.calls_to(method)) >= count else None,
            within=within,
        )

    def _record_change(self) -> None:
        self._changed.set()

    # Socket Mode -------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Websocket connections opened so far."""
        return self._connections

    @property
    def open_connections(self) -> int:
        """Websocket connections open now."""
        return len(self._sockets)

    async def wait_connected(self, *, count: int = 1, within: float = WAIT) -> None:
        await self.wait_for(lambda: self._connections >= count and self._sockets, within=within)

    async def drop_connections(self) -> None:
        """Close every Socket Mode websocket from Slack's side (slack_sdk reconnects unless
        ``apps.connections.open`` is made to fail, see :meth:`fail`)."""
        for ws in list(self._sockets):
            await ws.close()

    async def send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> Envelope:
        """Send an envelope on the newest connection, as Slack does (on a random one with
        :attr:`spread`)."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection")
        ws = self.spread.choice(self._sockets) if self.spread is not None else self._sockets[-1]
        envelope = Envelope(
            envelope_id=_new_id("env-"),
            type=kind,
            payload=payload,
            sent_at=time.monotonic(),
            connection=self._socket_numbers[id(ws)],
            retry_attempt=retry_attempt,
        )
        message: dict[str, Any] = {
            "envelope_id": envelope.envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": (
                kind != "events_api"
                if accepts_response_payload is None
                else accepts_response_payload
            ),
        }
        if kind == "events_api":
            message["retry_attempt"] = retry_attempt
            message["retry_reason"] = retry_reason
        self.envelopes.append(envelope)
        await ws.send_str(json.dumps(message))
        return envelope

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        team_id: str | None = None,
        event_id: str | None = None,
        retry_attempt: int = 0,
    ) -> Envelope:
        body = event_callback(event, team_id=team_id or self.team_id, event_id=event_id)
        envelope = await self.send(
            "events_api",
            body,
            retry_attempt=retry_attempt,
            retry_reason="timeout" if retry_attempt else "",
        )
        if self.redelivery is not None and not retry_attempt:
            task = asyncio.create_task(self._redeliver(envelope, self.redelivery))
            self._redeliveries.add(task)
            task.add_done_callback(self._redeliveries.discard)
        return envelope

    def attempts(self, event_id: str) -> list[Envelope]:
        """Every envelope that carried the event ``event_id`` (its first delivery and retries)."""
        return [e for e in self.envelopes if e.payload.get("event_id") == event_id]

    async def _redeliver(self, first: Envelope, redelivery: Redelivery) -> None:
        attempts = [first]
        for attempt, after in enumerate(redelivery.after, start=1):
            await asyncio.sleep(max(0.0, first.sent_at + after - time.monotonic()))
            if any(sent.acked_at is not None for sent in attempts):
                return
            if self._sockets:  # with no connection Slack counts the attempt as failed
                attempts.append(
                    await self.send(
                        first.type, first.payload, retry_attempt=attempt, retry_reason="timeout"
                    )
                )

    async def wait_ack(self, envelope: Envelope, *, within: float = WAIT) -> Envelope:
        await self.wait_for(lambda: envelope.acked_at is not None, within=within)
        return envelope

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the fake Slack is already running")
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/link/", self._socket)
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        runner, port = await serve_on_loopback(app)
        self._runner = runner
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in list(self._redeliveries):
            task.cancel()
        await asyncio.gather(*self._redeliveries, return_exceptions=True)
        for ws in list(self._sockets):
            await ws.close()
        await runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # HTTP handlers -----------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        token = _bearer(request) or args.pop("token", None)
        self.calls.append(ApiCall(method=method, args=args, token=token, at=time.monotonic()))
        self._record_change()
        if self.api_latency:
            await asyncio.sleep(self.api_latency)
        failure = self._next_failure(method)
        if failure is not None:
            return web.json_response(
                {"ok": False, "error": failure.error},
                status=failure.status,
                headers=failure.headers,
            )
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token is None:
            return _error("not_authed")
        if token != expected:
            return _error("invalid_auth")
        handler = self._handlers().get(method)
        if handler is None:
            return _error("unknown_method", req_method=method)
        answer = handler(args)
        self._record_change()
        held = self.held_answers.get(method)
        if held is not None:  # done, but the caller hears of it only later, if ever
            await held.wait()
        return web.json_response(answer)

    def _next_failure(self, method: str) -> Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
        return failure

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "apps.connections.open": lambda args: {"ok": True, "url": self.ws_url},
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "assistant.threads.setStatus": _ok,
            "assistant.threads.setTitle": _ok,
            "assistant.threads.setSuggestedPrompts": _suggested_prompts,
            "agents.sessions.setStatus": _session_status,
            "agents.sessions.rename": _session_rename,
            "conversations.replies": self._replies,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake-workspace.slack.com/",
            "team": "Fake Workspace",
            "user": "parley",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _shape(self, message: BotMessage) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": APP_ID,
            "text": message.text,
            "ts": message.ts,
            "team": self.team_id,
        }
        if message.thread_ts:
            shape["thread_ts"] = message.thread_ts
        if message.blocks:
            shape["blocks"] = message.blocks
        return shape

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        shown = _shown(args)
        if isinstance(shown, str):
            return {"ok": False, "error": shown}
        text, blocks, markdown = shown
        message = BotMessage(
            channel=channel,
            ts=new_ts(),
            thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None,
            text=text,
            blocks=blocks,
            markdown=markdown,
        )
        self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": self._shape(message)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self.message(str(args.get("channel")), str(args.get("ts")))
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        shown = _shown(args)
        if isinstance(shown, str):
            return {"ok": False, "error": shown}
        message.text, message.blocks, message.markdown = shown
        message.updates += 1
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._shape(message),
        }

    def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self.message(str(args.get("channel")), str(args.get("ts")))
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        message.deleted = True
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread's messages after ``oldest``, oldest first. The fake keeps only the bot's
        own messages, so people's (the parent's included) are not among them."""
        channel, thread = str(args.get("channel") or ""), str(args.get("ts") or "")
        if not channel or not thread:
            return {"ok": False, "error": "invalid_arguments"}
        oldest = float(args.get("oldest") or 0)
        inclusive = str(args.get("inclusive") or "").lower() in ("1", "true")
        limit = int(args.get("limit") or 1000)
        found = sorted(
            (
                message
                for message in self.messages
                if message.channel == channel
                and message.thread_ts == thread
                and not message.deleted
                and (float(message.ts) > oldest or (inclusive and float(message.ts) == oldest))
            ),
            key=lambda message: float(message.ts),
        )
        return {
            "ok": True,
            "messages": [self._shape(message) for message in found[:limit]],
            "has_more": len(found) > limit,
        }

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        entry = dict(args)
        entry["blocks"] = _json_arg(args.get("blocks"))
        self.ephemerals.append(entry)
        return {"ok": True, "message_ts": new_ts()}

    def _start_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.streaming_enabled:
            return {"ok": False, "error": "unknown_method", "req_method": "chat.startStream"}
        channel = str(args.get("channel") or "")
        if not args.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        message = BotMessage(
            channel=channel,
            ts=new_ts(),
            thread_ts=str(args["thread_ts"]),
            text=_stream_text(args),
            streamed=True,
            streaming=True,
            markdown=True,
        )
        self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": message.ts}

    def _append_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self.message(str(args.get("channel")), str(args.get("ts")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not message.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        message.text += _stream_text(args)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _stop_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self.message(str(args.get("channel")), str(args.get("ts")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not message.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        message.text += _stream_text(args)
        message.streaming = False
        blocks = _json_arg(args.get("blocks"))
        if isinstance(blocks, list):
            message.blocks = blocks
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "message": self._shape(message),
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = _new_id("F")
        self.uploads[file_id] = Upload(file_id=file_id, filename=str(args.get("filename") or ""))
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        files = _json_arg(args.get("files"))
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        done = []
        for item in files:
            upload = self.uploads.get(str(item.get("id")))
            if upload is None:
                return {"ok": False, "error": "file_not_found"}
            upload.title = str(item.get("title") or upload.filename)
            upload.channel = args.get("channel_id")
            upload.thread_ts = args.get("thread_ts")
            upload.initial_comment = args.get("initial_comment")
            upload.completed = True
            done.append({"id": upload.file_id, "title": upload.title, "name": upload.filename})
        return {"ok": True, "files": done}

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="not found")
        upload.content = await request.read()
        self._record_change()
        return web.Response(text=f"OK - {len(upload.content)}")

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["_url"] = str(request.url)
        self.responses.append(body)
        self._record_change()
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self._connections += 1
        self._socket_numbers[id(ws)] = self._connections
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {
                        "host": "applink-fake",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        self._record_change()
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                self._acknowledged(json.loads(frame.data))
        finally:
            self._sockets.remove(ws)
            self._socket_numbers.pop(id(ws), None)
            self._record_change()
        return ws

    def _acknowledged(self, data: dict[str, Any]) -> None:
        for envelope in self.envelopes:
            if envelope.envelope_id == data.get("envelope_id") and envelope.acked_at is None:
                envelope.acked_at = time.monotonic()
                payload = data.get("payload")
                envelope.ack_payload = payload if isinstance(payload, dict) else None
        self._record_change()


# wire helpers ----------------------------------------------------------------------------


async def _arguments(request: web.Request) -> dict[str, Any]:
    """Arguments from the query string, a form body or a JSON body, as Slack accepts them."""
    args: dict[str, Any] = dict(request.query)
    raw = await request.read()
    if not raw:
        return args
    if request.content_type == "application/json":
        body = json.loads(raw)
        if isinstance(body, dict):
            args.update(body)
    else:
        args.update(parse_qsl(raw.decode(), keep_blank_values=True))
    return args


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return header.removeprefix("Bearer ").strip() or None


def _json_arg(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _stream_text(args: dict[str, Any]) -> str:
    text = str(args.get("markdown_text") or "")
    chunks = _json_arg(args.get("chunks"))
    if isinstance(chunks, list):
        text += "".join(
            str(chunk.get("text") or "")
            for chunk in chunks
            if isinstance(chunk, dict) and chunk.get("type") == "markdown_text"
        )
    return text


def _shown(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None, bool] | str:
    """What a posted or updated message shows: its text, blocks and whether the text is
    Markdown; or Slack's error. ``markdown_text`` may not come with ``text`` or ``blocks``;
    ``markdown`` blocks show their Markdown (``text`` is then only the notification)."""
    markdown_text = args.get("markdown_text")
    text = str(args.get("text") or "")
    blocks = _json_arg(args.get("blocks"))
    blocks = blocks if isinstance(blocks, list) and blocks else None
    if markdown_text:
        if text or blocks:
            return "invalid_arguments"
        return str(markdown_text), None, True
    if blocks is not None:
        markdown = [
            str(block.get("text") or "")
            for block in blocks
            if isinstance(block, dict) and block.get("type") == "markdown"
        ]
        if markdown:
            return "\n".join(markdown), blocks, True
    if not text and blocks is None:
        return "no_text"
    return text, blocks, False


SESSION_STATUSES = frozenset({"active", "processing", "suspended", "closed"})


def _session_status(args: dict[str, Any]) -> dict[str, Any]:
    if not args.get("channel_id") or args.get("status") not in SESSION_STATUSES:
        return {"ok": False, "error": "invalid_arguments"}
    return {"ok": True, "status": args["status"]}


def _session_rename(args: dict[str, Any]) -> dict[str, Any]:
    title = str(args.get("title") or "")
    if not args.get("channel_id") or not 1 <= len(title) <= 200:
        return {"ok": False, "error": "invalid_arguments"}
    return {"ok": True, "title": title}


def _suggested_prompts(args: dict[str, Any]) -> dict[str, Any]:
    prompts = _json_arg(args.get("prompts"))
    if not args.get("channel_id") or not isinstance(prompts, list) or not prompts:
        return {"ok": False, "error": "invalid_arguments"}
    return {"ok": True}


def _ok(args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def _error(error: str, **extra: str) -> web.Response:
    return web.json_response({"ok": False, "error": error, **extra})


# payloads, in the shapes of Slack's documentation -----------------------------------------


def message_event(
    text: str,
    *,
    user: str = "U0ADA",
    channel: str = "C0KITCHEN",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM,
    channel_type: str = "channel",
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` event (``message.channels``, ``message.im``...)."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "client_msg_id": _new_id("msg-"),
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
        "blocks": [
            {
                "type": "rich_text",
                "block_id": "b1",
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
                ],
            }
        ],
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = BOT_USER
    event.update(extra)
    return event


def mention_event(
    text: str,
    *,
    user: str = "U0ADA",
    channel: str = "C0KITCHEN",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM,
    bot_user: str = BOT_USER,
) -> dict[str, Any]:
    """An ``app_mention`` event; its text starts with the mention, as Slack writes it."""
    event = message_event(
        f"<@{bot_user}> {text}".rstrip(),
        user=user,
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        team=team,
    )
    event["type"] = "app_mention"
    del event["channel_type"]  # app_mention events carry none
    return event


def event_callback(
    event: dict[str, Any], *, team_id: str = TEAM, event_id: str | None = None
) -> dict[str, Any]:
    """The Events API envelope (the body of an HTTP POST, or a Socket Mode payload)."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or _new_id("Ev"),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    }


def assistant_thread_started(
    *, user: str = "U0ADA", channel: str = "D0ADA", thread_ts: str | None = None
) -> dict[str, Any]:
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": {"channel_id": "C0KITCHEN", "team_id": TEAM, "enterprise_id": None},
            "channel_id": channel,
            "thread_ts": thread_ts or new_ts(),
        },
        "event_ts": new_ts(),
    }


def agent_session_stopped(
    *,
    channel: str,
    thread_ts: str,
    user: str = "U0ADA",
    streaming_message_ts: list[str] | None = None,
) -> dict[str, Any]:
    """The Stop button on an agent session; ``streaming_message_ts`` lists the streams Slack
    stopped (empty when none was open)."""
    return {
        "type": "agent_session_stopped",
        "channel": channel,
        "thread_ts": thread_ts,
        "user": user,
        "streaming_message_ts": streaming_message_ts or [],
        "event_ts": new_ts(),
    }


def app_home_opened(
    *, user: str = "U0ADA", channel: str = "D0ADA", tab: str = "messages"
) -> dict[str, Any]:
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": channel,
        "tab": tab,
        "event_ts": new_ts(),
    }


def feedback_click(
    message: BotMessage, rating: str, *, user: str = "U0ADA", team: str = TEAM
) -> dict[str, Any]:
    """A click on the good or bad button of the feedback buttons under ``message``."""
    for block in message.blocks or []:
        if block.get("type") != "context_actions":
            continue
        for element in block.get("elements", []):
            if element.get("type") == "feedback_buttons":
                button = element["positive_button" if rating == "good" else "negative_button"]
                action_id = element["action_id"]
                break
        else:
            continue
        break
    else:
        raise AssertionError(f"message {message.ts} has no feedback buttons")
    payload = _block_actions(
        {
            "action_id": action_id,
            "block_id": block.get("block_id", "feedback"),
            "type": "feedback_buttons",
            "text": button["text"],
            "value": button["value"],
            "action_ts": new_ts(),
        },
        user=user,
        team=team,
        channel=message.channel,
        message_ts=message.ts,
        thread_ts=message.thread_ts,
        ephemeral=False,
        response_url="",
    )
    payload["message"] = {"ts": message.ts, "text": message.text, "blocks": message.blocks}
    return payload


def slash_command(
    text: str,
    *,
    response_url: str,
    user: str = "U0ADA",
    channel: str = "C0KITCHEN",
    channel_name: str = "kitchen",
    team: str = TEAM,
) -> dict[str, Any]:
    """A ``/agent`` invocation (HTTP mode sends these fields form-encoded)."""
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "team_domain": "fake-workspace",
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user.lower(),
        "command": "/agent",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": _new_id("trigger-"),
    }


def block_actions(
    action_id: str,
    value: str,
    *,
    response_url: str,
    user: str = "U0ADA",
    channel: str = "C0KITCHEN",
    thread_ts: str | None = None,
    team: str = TEAM,
) -> dict[str, Any]:
    """A button click on an ephemeral message."""
    return _block_actions(
        {
            "action_id": action_id,
            "block_id": "forget",
            "text": {"type": "plain_text", "text": "Forget it"},
            "value": value,
            "type": "button",
            "action_ts": new_ts(),
        },
        user=user,
        team=team,
        channel=channel,
        message_ts=new_ts(),
        thread_ts=thread_ts,
        ephemeral=True,
        response_url=response_url,
    )


def _block_actions(
    action: dict[str, Any],
    *,
    user: str,
    team: str,
    channel: str,
    message_ts: str,
    thread_ts: str | None,
    ephemeral: bool,
    response_url: str,
) -> dict[str, Any]:
    """Slack's ``block_actions`` payload for one ``action`` on a message in ``channel``."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
            "thread_ts": thread_ts,
        },
        "trigger_id": _new_id("trigger-"),
        "team": {"id": team, "domain": "fake-workspace"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "kitchen"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def signed_headers(
    secret: str, body: bytes, *, timestamp: int | None = None, content_type: str
) -> dict[str, str]:
    """Headers of a request signed as Slack signs them: ``v0=HMAC-SHA256(v0:ts:body)``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A running fake Slack for one test, with two people: Ada (member) and Olu (admin)."""
    fake = FakeSlack()
    fake.add_user("U0ADA", "Ada")
    fake.add_user("U0OLU", "Olu", admin=True)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
