"""Background memory extraction, for agents whose model handles the reply's extra memory field
badly (``memory: {extract: background}``): their replies are plain, and every few turns of a
person in a conversation one model call reads that person's recent messages and lists the new
durable facts they revealed. At most 0.25 calls a turn with the default of every 4 turns; one
run per person pending, bounded like consolidation.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.errors import StoreError
from bot.llm import ChatRequest, ModelError
from bot.lru import BoundedLRU
from bot.memory import PeopleMemory, Recalled, take_listed_facts
from bot.prompt import ChatMessage
from bot.structured import StructuredReplies
from config.agents import Agent
from memory.base import MemoryScope, MessageRecords

logger = logging.getLogger(__name__)

EXTRACT_MARKER = "[parley:extract]"
EXTRACT_EVERY = 4
"""Turns of one person in one conversation between two extractions."""
READ_BACK = 24
"""Newest messages of the conversation an extraction reads for the person's own."""
EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "items": {"type": "string"},
            "description": "new durable facts about the person, one short sentence each",
        }
    },
    "required": ["facts"],
    "additionalProperties": False,
}


def extraction_instructions(name: str, known: list[str]) -> str:
    schema = json.dumps(EXTRACTION_SCHEMA, separators=(",", ":"))
    remembered = "\n".join(f"- {fact}" for fact in known) or "(nothing yet)"
    return (
        f"{EXTRACT_MARKER} You keep what an assistant remembers about {name}. The user message "
        f"holds {name}'s latest messages. List the new durable facts about {name} they reveal "
        "(name, preferences, allergies, decisions, promises), each one short sentence; an "
        "empty list when there are none. Leave out what is already remembered:\n"
        f"{remembered}\n\n"
        "Answer with exactly one JSON object and nothing else, matching this JSON Schema:\n"
        + schema
    )


@dataclass(frozen=True, slots=True)
class Said:
    """Where a person's messages are read from, and what is known of them."""

    conversation_id: str
    author_id: str
    name: str
    private: bool


class BackgroundExtraction:
    """Counts a person's turns per conversation and extracts facts every ``every`` turns."""

    def __init__(
        self,
        *,
        store: MessageRecords,
        memory: PeopleMemory,
        replies: StructuredReplies,
        model_for: Callable[[Agent], str],
        on_learned: Callable[[MemoryScope, Agent], None],
        every: int = EXTRACT_EVERY,
        max_pending: int = 10_000,
    ) -> None:
        self._store = store
        self._memory = memory
        self._replies = replies
        self._model_for = model_for
        self._on_learned = on_learned
        self._every = every
        self._max_pending = max_pending
        self._turns: BoundedLRU[tuple[str, MemoryScope], int] = BoundedLRU(max_pending)
        self._tasks: dict[MemoryScope, asyncio.Task[None]] = {}
        self.calls = 0

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    def turn_done(
        self,
        agent: Agent,
        recalled: Recalled,
        *,
        conversation_id: str,
        author_id: str,
        name: str,
        private: bool,
    ) -> None:
        """A turn of ``recalled.scope``'s person ended in the conversation; every
        ``every``-th schedules an extraction (unless one for the person is pending)."""
        counter = (conversation_id, recalled.scope)
        turns = (self._turns.get(counter) or 0) + 1
        self._turns.put(counter, turns)
        if turns % self._every or recalled.scope in self._tasks:
            return
        if len(self._tasks) >= self._max_pending:
            logger.warning("memory: %d extractions waiting; one more skipped", self._max_pending)
            return
        where = Said(conversation_id, author_id, name or "this person", private)
        task = asyncio.create_task(self._run(agent, recalled, where), name="memory extraction")
        self._tasks[recalled.scope] = task
        task.add_done_callback(lambda _: self._tasks.pop(recalled.scope, None))

    async def _run(self, agent: Agent, recalled: Recalled, where: Said) -> None:
        try:
            learned = await self.extract(agent, recalled, where)
        except (StoreError, ModelError) as exc:
            logger.warning("memory: extraction failed (%s)", exc)
            return
        except Exception:
            logger.exception("memory: extraction failed")
            return
        if learned:
            self._on_learned(recalled.scope, agent)

    async def extract(self, agent: Agent, recalled: Recalled, where: Said) -> int:
        """One extraction now; returns how many facts were kept."""
        conversation_id = where.conversation_id
        latest = await self._store.list_messages(
            conversation_id=conversation_id, limit=READ_BACK, newest_first=True
        )
        said = [
            message.text
            for message in reversed(latest)
            if message.role == "user" and message.author_id == where.author_id
        ][-self._every :]
        replies = [message for message in latest if message.role == "assistant"]
        if not said or not replies:
            return 0
        request = ChatRequest(
            model=self._model_for(agent),
            messages=(
                ChatMessage(
                    role="system",
                    content=extraction_instructions(
                        where.name, [memory.text for memory in recalled.memories]
                    ),
                ),
                ChatMessage(role="user", content="\n".join(said)),
            ),
            temperature=0,
            provider=agent.provider,
            metadata={
                "conversation_id": conversation_id,
                "agent_id": agent.id,
                "purpose": "memory",
            },
        )
        self.calls += 1
        generated = await self._replies.generate(
            request, schema=EXTRACTION_SCHEMA, reply_field=None, stream=False
        )
        facts = take_listed_facts((generated.data or {}).get("facts"))
        kept = await self._memory.learn(
            recalled,
            facts,
            private=where.private,
            conversation_id=conversation_id,
            message_id=replies[0].id,
        )
        return len(kept)
