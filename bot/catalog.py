"""Every agent the bot knows: the agents file's (read-only) and those stored through the API.

Stored agents live in the shared store, so an agent created by one process is usable by every
process at once: a lookup that misses the local cache asks the store. Cached stored agents are
re-read after ``ttl`` seconds, so an edit or a deletion reaches other processes within that.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection
from typing import Any, Literal

from bot.errors import ConfigError, Conflict, NotFound
from bot.lru import BoundedLRU
from config.agents import AGENT_ID, Agent, AgentsFile, parse_agent
from memory.base import ConversationStore, StoredAgent

logger = logging.getLogger(__name__)

AgentSource = Literal["file", "store"]

_AGENT_ID = re.compile(AGENT_ID)


class ReadOnlyAgent(Conflict):
    """The agent comes from the agents file; edit the file instead."""

    code = "read_only"


class AgentCatalog:
    """File agents first, then stored agents (cached, bounded, refreshed after ``ttl``)."""

    def __init__(
        self,
        file: AgentsFile,
        store: ConversationStore,
        *,
        ttl: float = 2.0,
        capacity: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        providers: Collection[str] | None = None,
    ) -> None:
        """``providers``: the model providers an agent created or replaced here may name
        (a stored agent naming one no longer configured is still read: its calls fail)."""
        self._file = file
        self._providers = providers
        self._store = store
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._cache: BoundedLRU[str, tuple[Agent | None, float]] = BoundedLRU(capacity)

    @property
    def file(self) -> AgentsFile:
        return self._file

    # the agents file's interface, over file agents and cached stored agents ---------------

    @property
    def agents(self) -> tuple[Agent, ...]:
        """File agents, then the stored agents this process has seen (see :meth:`refresh`)."""
        stored = tuple(
            agent
            for agent, _ in self._cache.values()
            if agent is not None and not self._in_file(agent.id)
        )
        return self._file.agents + stored

    @property
    def default(self) -> Agent:
        return self._file.default

    def find(self, agent_id: str) -> Agent | None:
        """A file agent, or a cached stored agent (possibly stale; see :meth:`lookup`)."""
        agent = self._file.find(agent_id)
        if agent is not None:
            return agent
        cached = self._cache.get(agent_id)
        return cached[0] if cached is not None else None

    def get(self, agent_id: str) -> Agent:
        agent = self.find(agent_id)
        if agent is None:
            raise KeyError(agent_id)
        return agent

    def for_channel(
        self, platform: Literal["slack", "discord"], channel: str, workspace: str = ""
    ) -> Agent:
        return self._file.for_channel(platform, channel, workspace=workspace)

    def source_of(self, agent_id: str) -> AgentSource:
        return "file" if self._in_file(agent_id) else "store"

    # the store ----------------------------------------------------------------------------

    async def lookup(self, agent_id: str) -> Agent | None:
        """The agent with this id, reading the store when the cache has no fresh answer."""
        agent = self._file.find(agent_id)
        if agent is not None:
            return agent
        if not _AGENT_ID.fullmatch(agent_id):
            return None
        cached = self._cache.get(agent_id)
        if cached is not None and cached[0] is not None and self._clock() - cached[1] < self._ttl:
            return cached[0]
        # a miss is never answered from the cache: an agent another process just created
        # must be usable here at once
        stored = await self._store.get_agent(agent_id=agent_id)
        return self._remember(agent_id, stored)

    async def refresh(self) -> tuple[Agent, ...]:
        """Re-read every stored agent; returns all agents, file agents first."""
        stored = await self._store.list_agents(limit=self._capacity)
        seen = {record.id for record in stored}
        for record in stored:
            self._remember(record.id, record)
        for agent_id in self._cache:
            if agent_id not in seen:
                self._cache.pop(agent_id)
        return self.agents

    async def create(self, definition: dict[str, Any]) -> Agent:
        """Validate like an agents-file entry and store it. Conflict if the id is taken."""
        agent = parse_agent(definition, source="agent", providers=self._providers)
        if self._in_file(agent.id):
            raise Conflict(f"agent {agent.id!r} is defined in the agents file")
        await self._store.create_agent(agent_id=agent.id, definition=definition)
        self._keep(agent.id, agent)
        return agent

    async def replace(self, agent_id: str, definition: dict[str, Any]) -> Agent:
        if not _AGENT_ID.fullmatch(agent_id):
            raise NotFound(f"agent {agent_id!r} not found")
        if self._in_file(agent_id):
            raise ReadOnlyAgent(
                f"agent {agent_id!r} comes from the agents file and is read-only here"
            )
        definition = {**definition, "id": definition.get("id", agent_id)}
        agent = parse_agent(definition, source="agent", providers=self._providers)
        if agent.id != agent_id:
            raise ConfigError(f"agent {agent_id!r}: id: cannot change (got {agent.id!r})")
        record = await self._store.replace_agent(agent_id=agent_id, definition=definition)
        if record is None:
            raise NotFound(f"agent {agent_id!r} not found")
        self._keep(agent_id, agent)
        return agent

    async def delete(self, agent_id: str) -> bool:
        if not _AGENT_ID.fullmatch(agent_id):
            return False
        if self._in_file(agent_id):
            raise ReadOnlyAgent(
                f"agent {agent_id!r} comes from the agents file and is read-only here"
            )
        deleted = await self._store.delete_agent(agent_id=agent_id)
        self._keep(agent_id, None)
        return deleted

    # internals ------------------------------------------------------------------------------

    def _in_file(self, agent_id: str) -> bool:
        return self._file.find(agent_id) is not None

    def _remember(self, agent_id: str, record: StoredAgent | None) -> Agent | None:
        agent: Agent | None = None
        if record is not None:
            try:
                agent = parse_agent(record.definition, source="store")
            except ConfigError as exc:  # a bad stored row must not break turns
                logger.warning("stored agent %r is invalid and ignored: %s", agent_id, exc)
        return self._keep(agent_id, agent)

    def _keep(self, agent_id: str, agent: Agent | None) -> Agent | None:
        self._cache.put(agent_id, (agent, self._clock()))
        return agent
