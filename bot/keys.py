"""API keys: made once, shown once, kept only as a SHA-256 hash with a name and a scope.

A key is ``pk_`` followed by 32 random bytes, URL-safe base64: recognisable in a leaked log or
a secret scanner, and unguessable. Scopes nest: ``read`` < ``write`` < ``admin``.

A key may be limited to some agents, platforms and workspaces (each empty: no limit); it sees
a conversation only when all three allow it (:func:`conversation_allowed`). A workspace is a
Slack team id, a Discord guild id or ``dm`` (Discord's direct messages); API and terminal
conversations have none, so a key limited to workspaces never sees them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from typing import get_args

from bot.errors import NotFound
from bot.lru import BoundedLRU
from config.agents import Agent, Bindings
from memory.base import (
    ID_PATTERN,
    WORKSPACE_PATTERN,
    ApiKeyRecord,
    ChannelBinding,
    Conversation,
    ConversationQuery,
    ConversationStore,
    NewApiKey,
    Platform,
    Scope,
)

logger = logging.getLogger(__name__)

KEY_PREFIX = "pk_"
_KEY_SHAPE = re.compile(r"^pk_[A-Za-z0-9_-]{43}$")
_RANK: dict[Scope, int] = {"read": 0, "write": 1, "admin": 2}
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
PLATFORMS: tuple[Platform, ...] = get_args(Platform)
WORKSPACE = re.compile(WORKSPACE_PATTERN)
_MISS_REREAD = 1.0
"""Seconds between re-reads of the active keys caused by ids missing from the snapshot."""


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_hint(key: str) -> str:
    """The first characters, enough for a person to tell keys apart in a listing."""
    return key[:8] + "…"


def scope_allows(granted: Scope, needed: Scope) -> bool:
    return _RANK[granted] >= _RANK[needed]


def agent_allowed(record: ApiKeyRecord, agent_id: str) -> bool:
    """Keys restricted to some agents (``--agents``) reach only those."""
    return not record.agents or agent_id in record.agents


def place_limited(record: ApiKeyRecord) -> bool:
    """The key is limited to some platforms or workspaces (``--platforms``, ``--workspaces``)."""
    return bool(record.platforms or record.workspaces)


def place_allowed(record: ApiKeyRecord, platform: Platform, workspace: str | None) -> bool:
    """The key may see what lives on ``platform`` in ``workspace``.

    ``workspace`` is None where it is unknown (an agents-file binding of a bare channel id):
    only keys without a workspace limit see those.
    """
    if record.platforms and platform not in record.platforms:
        return False
    return not record.workspaces or (workspace is not None and workspace in record.workspaces)


def conversation_allowed(record: ApiKeyRecord, conversation: Conversation) -> bool:
    """The one rule for every route that reads or changes a conversation: its agent, platform
    and workspace must all be within the key's limits."""
    key = conversation.key
    return place_allowed(record, key.platform, key.workspace) and agent_allowed(
        record, conversation.agent_id
    )


def within_limits(record: ApiKeyRecord, query: ConversationQuery) -> ConversationQuery:
    """``query`` narrowed to the conversations the key may see, filtered by the store (so
    pages and totals count only those)."""
    return query.model_copy(
        update={
            "agent_ids": record.agents,
            "platforms": record.platforms,
            "workspaces": record.workspaces,
        }
    )


def visible_bindings(
    record: ApiKeyRecord, bindings: Sequence[ChannelBinding]
) -> list[ChannelBinding]:
    """The stored channel bindings (``/agent use``) in places the key may see."""
    return [b for b in bindings if place_allowed(record, b.platform, b.workspace)]


def visible_agent(record: ApiKeyRecord, agent: Agent) -> Agent:
    """The agent with only the agents-file channel bindings the key may see.

    A Slack binding ``TEAM:C0123`` lives in workspace ``TEAM``; a bare Slack channel id or a
    Discord channel id names no workspace, so keys limited to workspaces do not see it.
    """
    if not place_limited(record):
        return agent
    slack = []
    for channel in agent.bindings.slack:
        team, _, _ = channel.rpartition(":")
        if place_allowed(record, "slack", team or None):
            slack.append(channel)
    discord = [c for c in agent.bindings.discord if place_allowed(record, "discord", None)]
    bindings = Bindings(slack=tuple(slack), discord=tuple(discord))
    return agent.model_copy(update={"bindings": bindings})


class ApiKeys:
    """Create, list, revoke and check keys against the store.

    Every check reads the store (one indexed lookup), so a key revoked by any process is
    refused at once everywhere. ``last_used_at`` is written at most once per ``touch_every``
    seconds per key, so a busy key costs no write per request.

    :meth:`active` checks a key by id (the web console's sessions hold the id, never the key)
    against a snapshot of the active keys, re-read at most once per ``active_ttl`` seconds.
    """

    def __init__(
        self,
        store: ConversationStore,
        *,
        touch_every: float = 60.0,
        active_ttl: float = 5.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._touch_every = touch_every
        self._active_ttl = active_ttl
        self._capacity = capacity
        self._clock = clock
        self._touched: BoundedLRU[str, float] = BoundedLRU(capacity)
        self._vouched: BoundedLRU[str, float] = BoundedLRU(capacity)
        """Hashes of keys that authenticated here lately, with when."""
        self._active: tuple[float, dict[str, ApiKeyRecord]] | None = None
        self._active_lock = asyncio.Lock()

    async def create(
        self,
        *,
        name: str,
        scope: Scope,
        agents: Sequence[str] = (),
        platforms: Sequence[Platform] = (),
        workspaces: Sequence[str] = (),
    ) -> tuple[str, ApiKeyRecord]:
        """A new key and its record; the key is returned this once and never stored.

        Raises ValueError (pydantic's) for a platform or workspace that is not one.
        """
        key = generate_key()
        record = await self._store.add_api_key(
            NewApiKey(
                name=name,
                scope=scope,
                agents=tuple(dict.fromkeys(agents)),
                platforms=tuple(dict.fromkeys(platforms)),
                workspaces=tuple(dict.fromkeys(workspaces)),
                key_hash=hash_key(key),
                hint=key_hint(key),
            )
        )
        self._active = None
        logger.info("API key %r created with scope %s", record.name, record.scope)
        return key, record

    async def list(self) -> list[ApiKeyRecord]:
        return await self._store.list_api_keys()

    async def revoke(self, id_or_name: str) -> ApiKeyRecord:
        """Revoke by id, or by the name of an active key. NotFound if neither matches."""
        records = await self._store.list_api_keys()
        if ID_PATTERN.fullmatch(id_or_name):
            match = [r for r in records if r.id == id_or_name and r.revoked_at is None]
        else:
            match = [r for r in records if r.name == id_or_name and r.revoked_at is None]
        if not match or not await self._store.revoke_api_key(key_id=match[0].id):
            raise NotFound(f"no active API key {id_or_name!r}")
        self._active = None
        logger.info("API key %r revoked", match[0].name)
        return match[0]

    async def authenticate(self, key: str) -> ApiKeyRecord | None:
        """The active key's record, or None for a malformed, unknown or revoked key."""
        if not _KEY_SHAPE.fullmatch(key):
            return None
        key_hash = hash_key(key)
        record = await self._store.find_api_key(key_hash=key_hash)
        if record is None or record.revoked_at is not None:
            self._vouched.pop(key_hash)
            return None
        self._vouched.put(key_hash, self._clock())
        await self._touch(record)
        return record

    def vouched(self, key: str) -> bool:
        """Whether ``key`` authenticated here within the last ``touch_every`` seconds.

        Not an authentication (:meth:`authenticate` still reads the store, so a revoked key is
        refused): it tells a client sending many requests at once with a good key from one
        guessing keys, so the first is never refused for the other's failures."""
        if not _KEY_SHAPE.fullmatch(key):
            return False
        at = self._vouched.get(hash_key(key))
        return at is not None and self._clock() - at < self._touch_every

    async def active(self, key_id: str) -> ApiKeyRecord | None:
        """The active key with this id, or None if it is unknown or revoked.

        Answers from a snapshot of the active keys, re-read from the store at most once per
        ``active_ttl`` seconds (5 by default) for all callers together, so a busy console costs
        no read per request: a key revoked by another process is refused within that time, one
        revoked through this object at once. A key missing from the snapshot (made by another
        process a moment ago) re-reads it, at most once a second. The snapshot holds the
        active keys only, at most ``capacity`` of them.
        """
        if not ID_PATTERN.fullmatch(key_id):
            return None
        snapshot = await self._snapshot(self._active_ttl)
        record = snapshot.get(key_id)
        if record is None:
            record = (await self._snapshot(_MISS_REREAD)).get(key_id)
        if record is not None:
            await self._touch(record)
        return record

    async def _snapshot(self, max_age: float) -> dict[str, ApiKeyRecord]:
        current = self._active
        if current is not None and self._clock() - current[0] < max_age:
            return current[1]
        async with self._active_lock:
            current = self._active
            if current is None or self._clock() - current[0] >= max_age:
                records = await self._store.list_api_keys()
                active = [r for r in records if r.revoked_at is None][-self._capacity :]
                current = (self._clock(), {r.id: r for r in active})
                self._active = current
            return current[1]

    async def _touch(self, record: ApiKeyRecord) -> None:
        now = self._clock()
        last = self._touched.get(record.id)
        if last is not None and now - last < self._touch_every:
            return
        self._touched.put(record.id, now)
        await self._store.touch_api_key(key_id=record.id)
