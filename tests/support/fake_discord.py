"""A fake Discord on 127.0.0.1: the REST API (v10) and the gateway, for the unmodified discord.py.

One aiohttp server plays both halves of Discord, with the wire shapes of the API v10 docs:

* **REST** under ``/api/v10`` (point ``DISCORD_API_URL`` at :attr:`FakeDiscord.api_url`).
  Answers are ``Content-Type: application/json`` exactly (discord.py parses nothing else), errors
  are Discord's ``{"message", "code"}`` bodies, and every request is recorded as a
  :class:`Call`, unknown routes too (404), so a test can spot what it did not expect. Messages
  the bot posts, edits and deletes are kept per channel (:meth:`FakeDiscord.bot_messages`) and
  echoed on the gateway like Discord does. Failures and 429s can be scripted
  (:meth:`FakeDiscord.rate_limit`, :meth:`FakeDiscord.fail`); a 429 carries ``retry_after`` and
  the ``Via`` header discord.py checks to tell Discord's limits from Cloudflare's.
* **Gateway** at ``/gateway`` (what ``GET /gateway/bot`` names) and ``/resume`` (the READY's
  ``resume_gateway_url``): HELLO, IDENTIFY (token checked; the Message Content intent, when
  the application does not have it, refused with close code 4014, as Discord does; a session
  without it gets messages' content only in DMs, mentions and its own messages; shards
  honoured), RESUME with replay of missed events, HEARTBEAT / ACK, READY with unavailable guild
  stubs, then GUILD_CREATE per guild of the shard, then dispatches with increasing ``s``.
  ``compress=zlib-stream`` (what discord.py 2.7 asks for without zstandard) is honoured: one
  zlib stream per connection, each message flushed with ``Z_SYNC_FLUSH`` (``00 00 ff ff``).
  Any other compression gets plain text frames, which discord.py also reads.

``GET /gateway/bot`` carries a ``session_start_limit`` that each IDENTIFY spends and that
resets ``reset_after`` after it was first asked for (:meth:`FakeDiscord.limit_session_starts`
sets it; an IDENTIFY beyond it is counted in :attr:`FakeDiscord.identifies_over_limit`).

Tests drive it with :meth:`FakeDiscord.say` (MESSAGE_CREATE from a person),
:meth:`FakeDiscord.slash` (INTERACTION_CREATE), :meth:`FakeDiscord.click` (a button),
:meth:`FakeDiscord.dispatch`,
:meth:`FakeDiscord.reconnect`, :meth:`FakeDiscord.invalidate_session` and
:meth:`FakeDiscord.close_for_good` (a close code discord.py does not retry), and wait for what
the bot did with :meth:`FakeDiscord.wait_for` (event-driven: every call wakes the waiters).

``async with FakeDiscord() as fake`` runs it; ``tests/support/discord_bot.py`` gives it a world
and starts the bot against it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import BodyPartReader, WSMsgType, web

from tests.support.loopback import serve_on_loopback

DISCORD_EPOCH_MS = 1_420_070_400_000
TOKEN = "MTAxNDkyNDk3.fake-discord.token"
API_PREFIX = "/api/v10"
MESSAGE_CONTENT_INTENT = 1 << 15
MANAGE_GUILD = 1 << 5
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 31) | (1 << 35) | (1 << 38)
"""View channels, send messages, read history, use slash commands, create public threads,
send messages in threads."""
BOT_PERMISSIONS = MEMBER_PERMISSIONS | (1 << 14) | (1 << 15)
"""The invite's permissions: the member ones plus embed links and attach files."""
EPHEMERAL = 1 << 6
ZLIB_SUFFIX = b"\x00\x00\xff\xff"
TEXT_CHANNEL, DM_CHANNEL, PUBLIC_THREAD = 0, 1, 11

T = TypeVar("T")


def snowflake(sequence: int, when_ms: int | None = None) -> int:
    """A Discord id: milliseconds since the Discord epoch, then a counter."""
    now = int(time.time() * 1000) if when_ms is None else when_ms
    return ((now - DISCORD_EPOCH_MS) << 22) | (sequence & 0xFFF)


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json(status: int, payload: Any) -> web.Response:
    """JSON with exactly ``Content-Type: application/json``, as Discord sends it."""
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )


def _error(status: int, message: str, code: int = 0) -> web.Response:
    return _json(status, {"message": message, "code": code})


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content: bytes
    content_type: str


@dataclass
class Call:
    """One REST request as the fake received it. ``path`` is relative to ``/api/v10``."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    """The JSON body (``payload_json`` of a multipart request), or None."""
    files: list[UploadedFile] = field(default_factory=list)
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the request arrived (its body not yet read)."""

    def matches(self, method: str, path: str) -> bool:
        return self.method == method and re.fullmatch(path, self.path) is not None


@dataclass
class _Script:
    method: str
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


@dataclass
class Connection:
    """One gateway websocket, as recorded."""

    path: str
    query: dict[str, str]
    ws: web.WebSocketResponse
    compressor: Any | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    session: Session | None = None
    close_code: int | None = None
    identified_at: float | None = None
    """``time.monotonic()`` of its accepted IDENTIFY."""

    @property
    def ops(self) -> list[int]:
        return [int(payload.get("op", -1)) for payload in self.received]

    async def send(self, payload: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        data = json.dumps(payload)
        self.sent.append(payload)
        if self.compressor is None:
            await self.ws.send_str(data)
            return
        chunk = self.compressor.compress(data.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        assert chunk.endswith(ZLIB_SUFFIX)
        await self.ws.send_bytes(chunk)


@dataclass
class Session:
    """A gateway session: survives its connection so that a RESUME can replay what it missed."""

    id: str
    shard: tuple[int, int]
    seq: int = 0
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    connection: Connection | None = None
    intents: int = 0
    """What its IDENTIFY asked for: without the Message Content intent, messages arrive with
    their content blanked, as Discord sends them (:func:`without_content`)."""

    def serves(self, guild_id: int | None) -> bool:
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % count == shard_id


@dataclass
class InteractionState:
    """What became of one interaction: its original response and its follow-ups."""

    id: int
    token: str
    channel_id: int
    guild_id: int | None
    user_id: int
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    original: dict[str, Any] | None = None
    loading: bool = False
    original_deleted: bool = False
    followups: list[dict[str, Any]] = field(default_factory=list)
    message_id: int | None = None
    """For a button click: the message whose button it was (a type 7 callback updates it)."""

    @property
    def replies(self) -> list[dict[str, Any]]:
        """Every message the person saw, in order: the original (unless deleted, or still
        loading) then the follow-ups."""
        shown = []
        if self.original is not None and not self.original_deleted and not self.loading:
            shown.append(self.original)
        return shown + self.followups


class FakeDiscord:
    """The fake. ``async with FakeDiscord() as fake`` (or the ``fake_discord`` fixture)."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        shards: int = 1,
        message_content_intent: bool = True,
    ) -> None:
        self.token = token
        self.shards = shards
        self.message_content_intent = message_content_intent
        self._ids = itertools.count(1)
        self.application_id = self.next_id()
        self.bot = self.user(self.next_id(), "parley", bot=True, global_name="Parley")
        self.users: dict[int, dict[str, Any]] = {int(self.bot["id"]): self.bot}
        self.guilds: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[int, dict[str, Any]]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.held_answers: dict[str, asyncio.Event] = {}
        """Requests (``"POST /channels/(\\d+)/messages"``, a pattern) that take effect at once
        but are answered only once the event is set: a caller that dies meanwhile never
        learns what its request did."""
        self.deleted: set[int] = set()
        self.uploads: dict[int, list[UploadedFile]] = {}
        self.attachments: dict[int, bytes] = {}
        self.downloads: list[str] = []
        """Attachment file names fetched from the fake's CDN path, in order."""
        self.commands: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.connections: list[Connection] = []
        self.sessions: dict[str, Session] = {}
        self.interactions: dict[str, InteractionState] = {}
        self.base_url = ""
        self._scripts: list[_Script] = []
        self.session_starts_total = 1000
        self.max_concurrency = 1
        self._starts_remaining = 999
        self._starts_reset_after = 14_400.0
        self._starts_reset_at: float | None = None
        self.limit_asked_at: float | None = None
        """``time.monotonic()`` when the current limit window began: its first ask."""
        self.identifies_over_limit = 0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # world ---------------------------------------------------------------------------

    def next_id(self) -> int:
        return snowflake(next(self._ids))

    @staticmethod
    def user(
        user_id: int, username: str, *, bot: bool = False, global_name: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": username,
            "global_name": global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }

    def add_user(
        self, user_id: int, username: str, *, global_name: str | None = None, bot: bool = False
    ) -> dict[str, Any]:
        self.users[user_id] = self.user(user_id, username, bot=bot, global_name=global_name)
        return self.users[user_id]

    def add_guild(self, guild_id: int, name: str, *, owner_id: int) -> dict[str, Any]:
        guild = {
            "id": str(guild_id),
            "name": name,
            "owner_id": str(owner_id),
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "features": [],
            "roles": [
                {
                    "id": str(guild_id),
                    "name": "@everyone",
                    "permissions": str(MEMBER_PERMISSIONS),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "vanity_url_code": None,
            "preferred_locale": "en-US",
            "application_id": None,
            "max_members": 500000,
            "joined_at": iso_now(),
            "large": False,
            "unavailable": False,
            "lazy": True,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
        }
        self.guilds[guild_id] = guild
        self.members[guild_id] = {}
        self.add_member(guild_id, int(self.bot["id"]))
        return guild

    def add_member(self, guild_id: int, user_id: int) -> dict[str, Any]:
        member = {
            "user": self.users[user_id],
            "nick": None,
            "avatar": None,
            "roles": [],
            "joined_at": iso_now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        self.members[guild_id][user_id] = member
        return member

    def add_text_channel(self, guild_id: int, channel_id: int, name: str) -> dict[str, Any]:
        channel = {
            "id": str(channel_id),
            "type": TEXT_CHANNEL,
            "guild_id": str(guild_id),
            "name": name,
            "position": len([c for c in self.channels.values() if c.get("guild_id")]),
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        self.channels[channel_id] = channel
        return channel

    def add_thread(
        self, guild_id: int, parent_id: int, thread_id: int, name: str, *, owner_id: int
    ) -> dict[str, Any]:
        thread = {
            "id": str(thread_id),
            "type": PUBLIC_THREAD,
            "guild_id": str(guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(owner_id),
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": iso_now(),
                "locked": False,
                "create_timestamp": iso_now(),
            },
        }
        self.channels[thread_id] = thread
        return thread

    def add_dm(self, channel_id: int, user_id: int) -> dict[str, Any]:
        channel = {
            "id": str(channel_id),
            "type": DM_CHANNEL,
            "last_message_id": None,
            "recipients": [self.users[user_id]],
        }
        self.channels[channel_id] = channel
        return channel

    def add_attachment(
        self, filename: str, content: bytes, content_type: str | None
    ) -> dict[str, Any]:
        """An uploaded file, served from the fake's CDN path."""
        attachment_id = self.next_id()
        self.attachments[attachment_id] = content
        url = f"{self.base_url}/attachments/{attachment_id}/{filename}"
        payload: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(content),
            "url": url,
            "proxy_url": url,
        }
        if content_type is not None:
            payload["content_type"] = content_type
        return payload

    def _guild_payload(self, guild_id: int) -> dict[str, Any]:
        members = list(self.members[guild_id].values())
        channels = [
            c
            for c in self.channels.values()
            if c.get("guild_id") == str(guild_id) and c["type"] != PUBLIC_THREAD
        ]
        threads = [
            c
            for c in self.channels.values()
            if c.get("guild_id") == str(guild_id) and c["type"] == PUBLIC_THREAD
        ]
        return {
            **self.guilds[guild_id],
            "channels": channels,
            "threads": threads,
            "members": members,
            "member_count": len(members),
        }

    # scripting -------------------------------------------------------------------------

    def rate_limit(
        self, method: str, path: str, *, retry_after: float = 0.05, times: int = 1
    ) -> None:
        """The next ``times`` requests matching (``path`` is a regex) get a 429."""
        self._scripts.append(
            _Script(
                method=method,
                path=path,
                status=429,
                body={
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": False,
                },
                headers={
                    "Via": "1.1 google",
                    "Retry-After": str(max(1, round(retry_after))),
                    "X-RateLimit-Scope": "user",
                },
                times=times,
            )
        )

    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int = 403,
        message: str = "Missing Permissions",
        code: int = 50013,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests matching get this Discord error."""
        self._scripts.append(
            _Script(method, path, status, {"message": message, "code": code}, {}, times)
        )

    def _scripted(self, method: str, path: str) -> web.Response | None:
        for script in self._scripts:
            if script.times > 0 and script.method == method and re.fullmatch(script.path, path):
                script.times -= 1
                response = _json(script.status, script.body)
                response.headers.update(script.headers)
                return response
        return None

    # lifecycle ---------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/gateway"

    @property
    def resume_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/resume"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the fake Discord is already running")
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/resume", self._gateway)
        app.router.add_get("/attachments/{id}/{filename}", self._attachment)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        runner, port = await serve_on_loopback(app)
        self._runner = runner
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for connection in self.connections:
            if not connection.ws.closed:
                await connection.ws.close(code=1001)
        await runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # waiting ---------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, found: Callable[[], T | None], *, within: float = 15.0) -> T:
        """Wait until ``found()`` returns something truthy (checked after every call and
        gateway event), and return it."""
        async with asyncio.timeout(within), self._changed:
            while True:
                value = found()
                if value:
                    return value
                await self._changed.wait()

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [call for call in self.calls if call.matches(method, path)]

    async def wait_for_calls(
        self, method: str, path: str, *, count: int = 1, within: float = 15.0
    ) -> list[Call]:
        def enough() -> list[Call] | None:
            calls = self.calls_to(method, path)
            return calls if len(calls) >= count else None

        return await self.wait_for(enough, within=within)

    def bot_messages(self, channel_id: int) -> list[dict[str, Any]]:
        """What the bot shows in a channel now: its messages there, after edits and deletes."""
        return [
            message
            for message_id, message in self.messages.items()
            if message["channel_id"] == str(channel_id)
            and message["author"]["id"] == self.bot["id"]
            and message_id not in self.deleted
            and not message.get("interaction_metadata")
        ]

    async def wait_for_bot_messages(
        self, channel_id: int, *, count: int = 1, within: float = 15.0
    ) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            shown = self.bot_messages(channel_id)
            return shown if len(shown) >= count else None

        return await self.wait_for(enough, within=within)

    def identified(self) -> list[Connection]:
        return [c for c in self.connections if c.session is not None]

    # driving the bot -----------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: int | None) -> None:
        """Send a DISPATCH to every session serving the guild (``None``: DMs, shard 0)."""
        for session in list(self.sessions.values()):
            if session.serves(guild_id):
                await self._dispatch_to(session, event, data)
        await self._notify()

    async def _dispatch_to(self, session: Session, event: str, data: dict[str, Any]) -> None:
        if (
            event in {"MESSAGE_CREATE", "MESSAGE_UPDATE"}
            and not session.intents & MESSAGE_CONTENT_INTENT
        ):
            data = without_content(data, int(self.bot["id"]))
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append(payload)
        if session.connection is not None:
            await session.connection.send(payload)

    async def say(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        message_type: int = 0,
        attachments: Iterable[dict[str, Any]] = (),
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A person (or another bot) writes in a channel: MESSAGE_CREATE as Discord sends it.

        ``mentions`` and ``mention_everyone`` are read from the content like Discord does.
        """
        channel = self.channels[channel_id]
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        message = self._message(
            channel_id,
            self.users[author_id],
            content,
            message_type=19 if reply_to is not None else message_type,
            attachments=list(attachments),
            reply_to=reply_to,
        )
        if guild_id is not None:
            message["member"] = _partial_member(self.members[guild_id][author_id])
        await self.dispatch("MESSAGE_CREATE", message, guild_id=guild_id)
        return message

    async def redeliver(self, message: dict[str, Any]) -> None:
        """The same MESSAGE_CREATE again, as after a gateway replay."""
        guild_id = int(message["guild_id"]) if "guild_id" in message else None
        await self.dispatch("MESSAGE_CREATE", message, guild_id=guild_id)

    def _message(
        self,
        channel_id: int,
        author: dict[str, Any],
        content: str,
        *,
        message_type: int = 0,
        attachments: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
        flags: int = 0,
    ) -> dict[str, Any]:
        channel = self.channels[channel_id]
        guild_id = channel.get("guild_id")
        message_id = self.next_id()
        mentions = []
        for match in re.finditer(r"<@!?([0-9]{15,20})>", content):
            user = self.users.get(int(match.group(1)))
            if user is None:
                continue
            mention = dict(user)
            if guild_id is not None and int(user["id"]) in self.members[int(guild_id)]:
                mention["member"] = _partial_member(self.members[int(guild_id)][int(user["id"])])
            mentions.append(mention)
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content or "@here" in content,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "pinned": False,
            "type": message_type,
            "flags": flags,
            "components": [],
        }
        if guild_id is not None:
            message["guild_id"] = guild_id
        if reply_to is not None:
            message["message_reference"] = {
                "type": 0,
                "message_id": str(reply_to),
                "channel_id": str(channel_id),
                **({"guild_id": guild_id} if guild_id else {}),
            }
            referenced = self.messages.get(reply_to)
            message["referenced_message"] = (
                None if referenced is None or reply_to in self.deleted else referenced
            )
        self.messages[message_id] = message
        channel["last_message_id"] = str(message_id)
        return message

    async def slash(
        self,
        channel_id: int,
        user_id: int,
        subcommand: str,
        *,
        permissions: int = MEMBER_PERMISSIONS,
        focused: str | None = None,
        **options: str,
    ) -> InteractionState:
        """A person uses ``/agent <subcommand> [option:value...]``: INTERACTION_CREATE.

        With ``focused`` (an option name) it is an autocomplete request instead.
        """
        channel = self.channels[channel_id]
        interaction_id = self.next_id()
        token = "aW50ZXJhY3Rpb24" + uuid.uuid4().hex
        command_id = next(
            (c["id"] for c in self.commands if c.get("name") == "agent"), str(self.next_id())
        )
        values = [
            {
                "type": 3,
                "name": name,
                "value": value,
                **({"focused": True} if name == focused else {}),
            }
            for name, value in options.items()
        ]
        data: dict[str, Any] = {
            "id": command_id,
            "name": "agent",
            "type": 1,
            "options": [{"type": 1, "name": subcommand, "options": values}],
        }
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": 4 if focused else 2,
            "data": data,
            "channel_id": str(channel_id),
            "channel": channel,
            "token": token,
            "version": 1,
            "app_permissions": str(BOT_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        return await self._interact(payload, channel_id, user_id, permissions)

    async def click(
        self,
        message: dict[str, Any],
        user_id: int,
        label: str,
        *,
        permissions: int = MEMBER_PERMISSIONS,
    ) -> InteractionState:
        """A person clicks the button labelled ``label`` on ``message``: INTERACTION_CREATE
        of type 3 (a message component)."""
        button = next(
            component
            for row in message.get("components") or []
            for component in row.get("components") or []
            if component.get("label") == label
        )
        channel_id = int(message["channel_id"])
        payload: dict[str, Any] = {
            "id": str(self.next_id()),
            "application_id": str(self.application_id),
            "type": 3,
            "data": {"custom_id": button["custom_id"], "component_type": 2},
            "message": message,
            "channel_id": str(channel_id),
            "channel": self.channels[channel_id],
            "token": "aW50ZXJhY3Rpb24" + uuid.uuid4().hex,
            "version": 1,
            "app_permissions": str(BOT_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        state = await self._interact(payload, channel_id, user_id, permissions)
        state.message_id = int(message["id"])
        return state

    async def _interact(
        self, payload: dict[str, Any], channel_id: int, user_id: int, permissions: int
    ) -> InteractionState:
        """Say who interacts (a member with ``permissions`` in a guild, a user in a DM) and
        dispatch the interaction."""
        channel = self.channels[channel_id]
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        if guild_id is not None:
            member = dict(self.members[guild_id][user_id])
            member["permissions"] = str(permissions)
            payload |= {
                "guild_id": str(guild_id),
                "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "member": member,
                "authorizing_integration_owners": {"0": str(guild_id)},
                "context": 0,
            }
        else:
            payload |= {
                "user": self.users[user_id],
                "authorizing_integration_owners": {"0": str(user_id)},
                "context": 1,
            }
        state = InteractionState(
            id=int(payload["id"]),
            token=str(payload["token"]),
            channel_id=channel_id,
            guild_id=guild_id,
            user_id=user_id,
        )
        self.interactions[state.token] = state
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=guild_id)
        return state

    async def wait_for_reply(
        self, interaction: InteractionState, *, count: int = 1, within: float = 15.0
    ) -> list[dict[str, Any]]:
        """The messages the person saw in answer to an interaction, once there are ``count``."""

        def enough() -> list[dict[str, Any]] | None:
            replies = interaction.replies
            return replies if len(replies) >= count else None

        return await self.wait_for(enough, within=within)

    async def reconnect(self) -> None:
        """Ask every connected client to reconnect (op 7): it closes and RESUMEs."""
        for connection in self._live():
            await connection.send({"op": 7, "d": None, "s": None, "t": None})

    async def invalidate_session(self) -> None:
        """Invalidate every session (op 9, not resumable): clients IDENTIFY again, at the
        default gateway."""
        for connection in self._live():
            if connection.session is not None:
                self.sessions.pop(connection.session.id, None)
            await connection.send({"op": 9, "d": False, "s": None, "t": None})

    async def close_for_good(
        self, code: int = 4004, reason: str = "Authentication failed."
    ) -> None:
        """Close every gateway connection with a code discord.py does not retry (4004: the
        token was reset; 4014: a privileged intent was switched off)."""
        for connection in self._live():
            await connection.ws.close(code=code, message=reason.encode())

    def limit_session_starts(
        self,
        *,
        remaining: int,
        reset_after_ms: int,
        total: int = 1000,
        max_concurrency: int = 1,
    ) -> None:
        """What ``GET /gateway/bot`` says of the session start limit from now on: ``remaining``
        IDENTIFYs until ``reset_after_ms`` has passed since the next ask (so that a bot slow
        to start still sees the whole window), then ``total`` again."""
        self.session_starts_total = total
        self.max_concurrency = max_concurrency
        self._starts_remaining = remaining
        self._starts_reset_after = reset_after_ms / 1000
        self._starts_reset_at = None
        self.limit_asked_at = None

    def _session_starts(self) -> tuple[int, int]:
        """Session starts remaining, and milliseconds until the limit resets."""
        now = time.monotonic()
        if self._starts_reset_at is None:
            self.limit_asked_at = now
            self._starts_reset_at = now + self._starts_reset_after
        elif now >= self._starts_reset_at:
            self._starts_remaining = self.session_starts_total
            self._starts_reset_at = now + 86_400
        return self._starts_remaining, max(0, int((self._starts_reset_at - now) * 1000))

    def _live(self) -> list[Connection]:
        return [c for c in self.connections if not c.ws.closed and c.session is not None]

    # gateway ---------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        compress = request.query.get("compress")
        connection = Connection(
            path=request.path,
            query=dict(request.query),
            ws=ws,
            compressor=zlib.compressobj() if compress == "zlib-stream" else None,
        )
        self.connections.append(connection)
        try:
            await connection.send(
                {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}
            )
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                connection.received.append(payload)
                await self._gateway_op(connection, payload)
                await self._notify()
        finally:
            connection.close_code = ws.close_code
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                if ws.close_code in {1000, 1001}:  # a clean close ends the session
                    self.sessions.pop(session.id, None)
            await self._notify()
        return ws

    async def _gateway_op(self, connection: Connection, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == 1:
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2 and isinstance(data, dict):
            await self._identify(connection, data)
        elif op == 6 and isinstance(data, dict):
            await self._resume(connection, data)

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & MESSAGE_CONTENT_INTENT and not self.message_content_intent:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        remaining, _ = self._session_starts()
        if remaining <= 0:
            self.identifies_over_limit += 1
        self._starts_remaining = max(0, remaining - 1)
        connection.identified_at = time.monotonic()
        shard_id, count = data.get("shard") or (0, 1)
        session = Session(id=uuid.uuid4().hex, shard=(int(shard_id), int(count)), intents=intents)
        self.sessions[session.id] = session
        session.connection = connection
        connection.session = session
        guilds = [guild_id for guild_id in self.guilds if session.serves(guild_id)]
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**self.bot, "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_url,
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
        }
        if "shard" in data:
            ready["shard"] = [session.shard[0], session.shard[1]]
        await self._dispatch_to(session, "READY", ready)
        for guild_id in guilds:
            await self._dispatch_to(session, "GUILD_CREATE", self._guild_payload(guild_id))

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await connection.send({"op": 9, "d": False, "s": None, "t": None})
            return
        session.connection = connection
        connection.session = session
        seen = int(data.get("seq") or 0)
        for missed in [p for p in session.log if p["s"] > seen]:
            await connection.send(missed)
        await self._dispatch_to(session, "RESUMED", {})

    # REST ------------------------------------------------------------------------------

    async def _attachment(self, request: web.Request) -> web.Response:
        content = self.attachments.get(int(request.match_info["id"]))
        if content is None:
            return web.Response(status=404)
        self.downloads.append(request.match_info["filename"])
        await self._notify()
        return web.Response(body=content, content_type="application/octet-stream")

    async def _unknown(self, request: web.Request) -> web.Response:
        self.calls.append(
            Call(
                request.method, request.path, dict(request.query), dict(request.headers), status=404
            )
        )
        await self._notify()
        return _error(404, "404: Not Found")

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        call = Call(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
        )
        await self._read_body(request, call)
        self.calls.append(call)
        try:
            response = self._scripted(call.method, path) or await self._route(call)
        except _Refusal as refusal:
            response = _error(refusal.status, refusal.message, refusal.code)
        call.status = response.status
        await self._notify()
        for pattern, answer in self.held_answers.items():
            if re.fullmatch(pattern, f"{call.method} {path}"):
                await answer.wait()  # done, but the caller hears of it only later, if ever
        return response

    async def _read_body(self, request: web.Request, call: Call) -> None:
        if not request.can_read_body:
            return
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                content = await part.read()
                if part.name == "payload_json":
                    call.body = json.loads(content)
                elif part.filename is not None:
                    call.files.append(
                        UploadedFile(
                            part.filename,
                            bytes(content),
                            part.headers.get("Content-Type", "application/octet-stream"),
                        )
                    )
            return
        raw = await request.read()
        if raw:
            call.body = json.loads(raw)

    async def _route(self, call: Call) -> web.Response:
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, call.path)
            if match is not None and method == call.method:
                if not pattern.startswith(("/interactions", "/webhooks")):
                    self._authorize(call)
                return await handler(call, *match.groups())
        return _error(404, "404: Not Found")

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway_bot),
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/oauth2/applications/@me", self._get_application),
            ("PUT", r"/applications/(\d+)/commands", self._put_commands),
            ("PUT", r"/applications/(\d+)/guilds/(\d+)/commands", self._put_guild_commands),
            ("GET", r"/channels/(\d+)", self._get_channel),
            ("GET", r"/channels/(\d+)/messages", self._get_messages),
            ("POST", r"/channels/(\d+)/messages", self._post_message),
            ("GET", r"/channels/(\d+)/messages/(\d+)", self._get_message),
            ("PATCH", r"/channels/(\d+)/messages/(\d+)", self._patch_message),
            ("DELETE", r"/channels/(\d+)/messages/(\d+)", self._delete_message),
            ("POST", r"/channels/(\d+)/typing", self._typing),
            ("POST", r"/channels/(\d+)/threads", self._post_thread),
            ("POST", r"/channels/(\d+)/messages/(\d+)/threads", self._post_message_thread),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback),
            ("GET", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._get_original),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._patch_original),
            ("DELETE", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._delete_original),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._followup),
        ]

    def _authorize(self, call: Call) -> None:
        if call.headers.get("authorization") != f"Bot {self.token}":
            raise _Refusal(401, "401: Unauthorized")

    async def _get_gateway(self, call: Call) -> web.Response:
        return _json(200, {"url": self.gateway_url})

    async def _get_gateway_bot(self, call: Call) -> web.Response:
        remaining, reset_after = self._session_starts()
        return _json(
            200,
            {
                "url": self.gateway_url,
                "shards": self.shards,
                "session_start_limit": {
                    "total": self.session_starts_total,
                    "remaining": remaining,
                    "reset_after": reset_after,
                    "max_concurrency": self.max_concurrency,
                },
            },
        )

    async def _get_me(self, call: Call) -> web.Response:
        return _json(200, {**self.bot, "verified": True, "mfa_enabled": False, "flags": 0})

    async def _get_application(self, call: Call) -> web.Response:
        return _json(
            200,
            {
                "id": str(self.application_id),
                "name": "Parley",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 1 << 19,
                "owner": self.user(self.next_id(), "owner"),
                "team": None,
                "bot": self.bot,
            },
        )

    def _command_payloads(self, body: Any, guild_id: str | None) -> list[dict[str, Any]]:
        commands = []
        for command in body if isinstance(body, list) else []:
            commands.append(
                {
                    **command,
                    "id": str(self.next_id()),
                    "application_id": str(self.application_id),
                    "version": str(self.next_id()),
                    "default_member_permissions": command.get("default_member_permissions"),
                    "type": command.get("type", 1),
                    "nsfw": command.get("nsfw", False),
                    **({"guild_id": guild_id} if guild_id else {}),
                }
            )
        return commands

    async def _put_commands(self, call: Call, application_id: str) -> web.Response:
        self.commands = self._command_payloads(call.body, None)
        return _json(200, self.commands)

    async def _put_guild_commands(
        self, call: Call, application_id: str, guild_id: str
    ) -> web.Response:
        return _json(200, self._command_payloads(call.body, guild_id))

    def _channel(self, channel_id: str) -> dict[str, Any]:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise _Refusal(404, "Unknown Channel", 10003)
        return channel

    def _stored(self, channel_id: str, message_id: str) -> dict[str, Any]:
        message = self.messages.get(int(message_id))
        if (
            message is None
            or message["channel_id"] != channel_id
            or int(message_id) in self.deleted
        ):
            raise _Refusal(404, "Unknown Message", 10008)
        return message

    async def _get_channel(self, call: Call, channel_id: str) -> web.Response:
        return _json(200, self._channel(channel_id))

    async def _post_message(self, call: Call, channel_id: str) -> web.Response:
        self._channel(channel_id)
        body = call.body if isinstance(call.body, dict) else {}
        reference = body.get("message_reference") or {}
        reply_to = int(reference["message_id"]) if reference.get("message_id") else None
        if reply_to is not None and reply_to not in self.messages:
            if reference.get("fail_if_not_exists", True):
                raise _Refusal(400, "Invalid Form Body", 50035)
            reply_to = None
        message = self._message(
            int(channel_id),
            self.bot,
            str(body.get("content") or ""),
            message_type=19 if reply_to is not None else 0,
            reply_to=reply_to,
            embeds=list(body.get("embeds") or []),
            attachments=self._uploaded(call),
        )
        if call.files:
            self.uploads[int(message["id"])] = list(call.files)
        await self.dispatch("MESSAGE_CREATE", message, guild_id=_guild_of(message))
        return _json(200, message)

    def _uploaded(self, call: Call) -> list[dict[str, Any]]:
        return [self.add_attachment(f.filename, f.content, f.content_type) for f in call.files]

    async def _get_messages(self, call: Call, channel_id: str) -> web.Response:
        """A channel's history as Discord pages it: with ``after``, the ``limit`` messages
        just after it; else those just before ``before`` (or the latest). Newest first."""
        self._channel(channel_id)
        limit = min(max(int(call.query.get("limit") or 50), 1), 100)
        after, before = call.query.get("after"), call.query.get("before")
        found = sorted(
            message_id
            for message_id, message in self.messages.items()
            if message["channel_id"] == channel_id
            and message_id not in self.deleted
            and (after is None or message_id > int(after))
            and (before is None or message_id < int(before))
        )
        page = found[:limit] if after is not None else found[-limit:]
        return _json(200, [self.messages[message_id] for message_id in reversed(page)])

    async def _get_message(self, call: Call, channel_id: str, message_id: str) -> web.Response:
        return _json(200, self._stored(channel_id, message_id))

    async def _patch_message(self, call: Call, channel_id: str, message_id: str) -> web.Response:
        message = self._stored(channel_id, message_id)
        body = call.body if isinstance(call.body, dict) else {}
        if "content" in body:
            message["content"] = body["content"] or ""
        if "embeds" in body:
            message["embeds"] = body["embeds"] or []
        message["edited_timestamp"] = iso_now()
        await self.dispatch("MESSAGE_UPDATE", message, guild_id=_guild_of(message))
        return _json(200, message)

    async def _delete_message(self, call: Call, channel_id: str, message_id: str) -> web.Response:
        message = self._stored(channel_id, message_id)
        self.deleted.add(int(message_id))
        deleted = {"id": message["id"], "channel_id": channel_id}
        if "guild_id" in message:
            deleted["guild_id"] = message["guild_id"]
        await self.dispatch("MESSAGE_DELETE", deleted, guild_id=_guild_of(message))
        return web.Response(status=204)

    async def _typing(self, call: Call, channel_id: str) -> web.Response:
        self._channel(channel_id)
        return web.Response(status=204)

    async def _new_thread(
        self, parent_id: str, thread_id: int, name: str, archive: int
    ) -> web.Response:
        parent = self._channel(parent_id)
        if parent["type"] != TEXT_CHANNEL:
            raise _Refusal(400, "Cannot execute action on this channel type", 50024)
        guild_id = int(parent["guild_id"])
        thread = self.add_thread(
            guild_id, int(parent_id), thread_id, name, owner_id=int(self.bot["id"])
        )
        thread["thread_metadata"]["auto_archive_duration"] = archive
        thread["member"] = {
            "id": str(thread_id),
            "user_id": self.bot["id"],
            "join_timestamp": iso_now(),
            "flags": 0,
        }
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, guild_id=guild_id)
        return _json(201, thread)

    async def _post_thread(self, call: Call, channel_id: str) -> web.Response:
        body = call.body if isinstance(call.body, dict) else {}
        return await self._new_thread(
            channel_id,
            self.next_id(),
            str(body.get("name", "")),
            int(body.get("auto_archive_duration", 1440)),
        )

    async def _post_message_thread(
        self, call: Call, channel_id: str, message_id: str
    ) -> web.Response:
        message = self._stored(channel_id, message_id)
        body = call.body if isinstance(call.body, dict) else {}
        response = await self._new_thread(
            channel_id,
            int(message["id"]),
            str(body.get("name", "")),
            int(body.get("auto_archive_duration", 1440)),
        )
        message["thread"] = self.channels[int(message["id"])]
        return response

    def _interaction(self, token: str) -> InteractionState:
        state = self.interactions.get(token)
        if state is None:
            raise _Refusal(404, "Unknown interaction", 10062)
        return state

    def _interaction_message(
        self, state: InteractionState, body: dict[str, Any], *, files: list[dict[str, Any]]
    ) -> dict[str, Any]:
        message = self._message(
            state.channel_id,
            self.bot,
            str(body.get("content") or ""),
            message_type=20,
            embeds=list(body.get("embeds") or []),
            attachments=files,
            flags=int(body.get("flags") or 0),
        )
        message["components"] = list(body.get("components") or [])
        message["webhook_id"] = str(self.application_id)
        message["application_id"] = str(self.application_id)
        owner = str(state.guild_id) if state.guild_id is not None else str(state.user_id)
        message["interaction_metadata"] = {
            "id": str(state.id),
            "type": 2,
            "user": self.users[state.user_id],
            "authorizing_integration_owners": {"0": owner},
        }
        return message

    async def _callback(self, call: Call, interaction_id: str, token: str) -> web.Response:
        state = self._interaction(token)
        if state.callbacks:
            raise _Refusal(400, "Interaction has already been acknowledged.", 40060)
        body = call.body if isinstance(call.body, dict) else {}
        state.callbacks.append(body)
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        interaction = {"id": interaction_id, "type": 2}
        if kind == 4:
            state.original = self._interaction_message(state, data, files=self._uploaded(call))
            if call.files:
                self.uploads[int(state.original["id"])] = list(call.files)
            interaction |= {
                "response_message_id": state.original["id"],
                "response_message_loading": False,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
            }
            await self._echo(state, state.original)
            resource: dict[str, Any] = {"type": kind, "message": state.original}
        elif kind == 5:
            state.loading = True
            state.original = self._interaction_message(state, data, files=[])
            interaction |= {
                "response_message_id": state.original["id"],
                "response_message_loading": True,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
            }
            resource = {"type": kind, "message": state.original}
        elif kind == 7 and state.message_id is not None:
            updated = self.messages[state.message_id]
            for name in ("content", "embeds", "components"):
                if name in data:
                    updated[name] = data[name]
            resource = {"type": kind, "message": updated}
        else:
            resource = {"type": kind}
        if "with_response" not in call.query:
            return web.Response(status=204)
        return _json(200, {"interaction": interaction, "resource": resource})

    async def _echo(self, state: InteractionState, message: dict[str, Any]) -> None:
        if not int(message.get("flags") or 0) & EPHEMERAL:
            await self.dispatch("MESSAGE_CREATE", message, guild_id=state.guild_id)

    async def _get_original(self, call: Call, application_id: str, token: str) -> web.Response:
        state = self._interaction(token)
        if state.original is None or state.original_deleted:
            raise _Refusal(404, "Unknown Message", 10008)
        return _json(200, state.original)

    async def _patch_original(self, call: Call, application_id: str, token: str) -> web.Response:
        state = self._interaction(token)
        if state.original is None or state.original_deleted:
            raise _Refusal(404, "Unknown Message", 10008)
        body = call.body if isinstance(call.body, dict) else {}
        for name in ("content", "embeds"):
            if name in body:
                state.original[name] = body[name]
        if call.files:
            state.original["attachments"] = self._uploaded(call)
            self.uploads[int(state.original["id"])] = list(call.files)
        state.loading = False
        return _json(200, state.original)

    async def _delete_original(self, call: Call, application_id: str, token: str) -> web.Response:
        state = self._interaction(token)
        if state.original is None or state.original_deleted:
            raise _Refusal(404, "Unknown Message", 10008)
        state.original_deleted = True
        self.deleted.add(int(state.original["id"]))
        return web.Response(status=204)

    async def _followup(self, call: Call, application_id: str, token: str) -> web.Response:
        """A follow-up. The first one after a defer completes the deferred ("thinking...")
        message instead, which keeps the defer's visibility, as on Discord."""
        state = self._interaction(token)
        if not state.callbacks:
            raise _Refusal(404, "Unknown Webhook", 10015)
        body = call.body if isinstance(call.body, dict) else {}
        files = self._uploaded(call)
        if state.loading and state.original is not None and not state.original_deleted:
            state.original |= {
                "content": str(body.get("content") or ""),
                "embeds": list(body.get("embeds") or []),
                "attachments": files,
            }
            state.loading = False
            message = state.original
            await self._echo(state, message)
        else:
            message = self._interaction_message(state, body, files=files)
            state.followups.append(message)
            await self._echo(state, message)
        if call.files:
            self.uploads[int(message["id"])] = list(call.files)
        if call.query.get("wait") in {"true", "1"}:
            return _json(200, message)
        return web.Response(status=204)


class _Refusal(Exception):
    def __init__(self, status: int, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def without_content(message: dict[str, Any], bot_id: int) -> dict[str, Any]:
    """``message`` as Discord sends it to a bot without the Message Content intent: content,
    embeds, attachments, components and poll empty, except in DMs, in messages that mention
    the bot and in the bot's own messages."""
    if "guild_id" not in message:
        return message
    author = message.get("author") or {}
    mentioned = any(int(user["id"]) == bot_id for user in message.get("mentions", ()))
    if mentioned or int(author.get("id", 0)) == bot_id:
        return message
    blank = {**message, "content": "", "embeds": [], "attachments": [], "components": []}
    blank.pop("poll", None)
    return blank


def _partial_member(member: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in member.items() if key != "user"}


def _guild_of(message: dict[str, Any]) -> int | None:
    guild_id = message.get("guild_id")
    return int(guild_id) if guild_id is not None else None
