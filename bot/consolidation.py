"""Memory consolidation: in the background, a person's facts are looked over by the model and
those a later fact repeats or contradicts ("lives in Paris", then "moved to Berlin") are
marked superseded: kept as history, never recalled again.

One model call per person per burst of learning: a scope is consolidated ``settle`` seconds
after the fact that scheduled it, so facts learned meanwhile are looked at together; at most
one run per scope is pending, ``concurrency`` run at once, and at most ``max_pending`` scopes
wait (past that a scope is skipped with a warning; its next fact schedules it again).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from bot.errors import StoreError
from bot.llm import ChatRequest, ModelError
from bot.prompt import ChatMessage
from bot.structured import StructuredReplies
from config.agents import Agent
from memory.base import Memory, MemoryQuery, MemoryRecords, MemoryScope

logger = logging.getLogger(__name__)

MEMORY_MARKER = "[parley:memory]"
CONSOLIDATE_AT_MOST = 60
"""The newest current facts of a person one consolidation looks at."""
CONSOLIDATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "replaced": {
            "type": "array",
            "description": "facts a later fact repeats, updates or contradicts",
            "items": {
                "type": "object",
                "properties": {
                    "old": {"type": "integer", "description": "the number of the older fact"},
                    "by": {"type": "integer", "description": "the number of the later fact"},
                },
                "required": ["old", "by"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["replaced"],
    "additionalProperties": False,
}


def consolidation_instructions() -> str:
    schema = json.dumps(CONSOLIDATION_SCHEMA, separators=(",", ":"))
    return (
        f"{MEMORY_MARKER} You keep what an assistant remembers about one person. The user "
        "message lists the facts, numbered from the oldest, with the day each was learned. "
        "Find every fact that a later fact repeats, updates or contradicts (for example "
        '"Lives in Paris" and later "Moved to Berlin"), and answer which later fact replaces '
        "it. Leave facts that are still true alone. An empty list when nothing is replaced.\n\n"
        "Answer with exactly one JSON object and nothing else, matching this JSON Schema:\n"
        + schema
    )


def numbered(memories: Sequence[Memory]) -> str:
    return "\n".join(
        f"{n}. ({memory.created_at:%Y-%m-%d}) {memory.text}"
        for n, memory in enumerate(memories, start=1)
    )


def replacements(memories: Sequence[Memory], data: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The (old id, new id) pairs of a consolidation's answer that make sense: both numbers
    listed, the replacing fact later than the replaced one, each fact replaced once."""
    pairs: dict[str, str] = {}
    for item in (data or {}).get("replaced") or []:
        if not isinstance(item, dict):
            continue
        old, by = item.get("old"), item.get("by")
        if not (isinstance(old, int) and isinstance(by, int)):
            continue
        if 1 <= old < by <= len(memories):
            pairs.setdefault(memories[old - 1].id, memories[by - 1].id)
    return list(pairs.items())


class Consolidation:
    """Schedules and runs consolidations, one per scope at a time."""

    def __init__(
        self,
        *,
        store: MemoryRecords,
        replies: StructuredReplies,
        model_for: Callable[[Agent], str],
        settle: float = 5.0,
        concurrency: int = 1,
        max_pending: int = 10_000,
    ) -> None:
        self._store = store
        self._replies = replies
        self._model_for = model_for
        self._settle = settle
        self._slots = asyncio.Semaphore(concurrency)
        self._max_pending = max_pending
        self._tasks: dict[MemoryScope, asyncio.Task[None]] = {}
        self.calls = 0
        """Model calls made (for the benchmark's calls per turn)."""

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    def schedule(self, scope: MemoryScope, agent: Agent) -> None:
        """Consolidate ``scope`` soon, unless it already waits."""
        if scope in self._tasks:
            return
        if len(self._tasks) >= self._max_pending:
            logger.warning("memory: %d consolidations waiting; one more skipped", self._max_pending)
            return
        task = asyncio.create_task(self._run(scope, agent), name="memory consolidation")
        self._tasks[scope] = task
        task.add_done_callback(lambda _: self._tasks.pop(scope, None))

    async def _run(self, scope: MemoryScope, agent: Agent) -> None:
        await asyncio.sleep(self._settle)
        async with self._slots:
            try:
                marked = await self.consolidate(scope, agent)
            except (StoreError, ModelError) as exc:
                logger.warning("memory: consolidation failed (%s)", exc)
                return
            except Exception:
                logger.exception("memory: consolidation failed")
                return
            if marked:
                logger.debug("memory: %d facts superseded", marked)

    async def consolidate(self, scope: MemoryScope, agent: Agent) -> int:
        """One consolidation of ``scope`` now; returns how many facts were superseded."""
        newest = await self._store.list_memories(MemoryQuery.of(scope, limit=CONSOLIDATE_AT_MOST))
        if len(newest) < 2:
            return 0
        memories = list(reversed(newest))  # oldest first, as the model reads them
        request = ChatRequest(
            model=self._model_for(agent),
            messages=(
                ChatMessage(role="system", content=consolidation_instructions()),
                ChatMessage(role="user", content=numbered(memories)),
            ),
            temperature=0,
            provider=agent.provider,
            metadata={"agent_id": agent.id, "purpose": "memory"},
        )
        self.calls += 1
        generated = await self._replies.generate(
            request, schema=CONSOLIDATION_SCHEMA, reply_field=None, stream=False
        )
        pairs = replacements(memories, generated.data)
        if not pairs:
            return 0
        return await self._store.supersede_memories(scope=scope, pairs=pairs)
