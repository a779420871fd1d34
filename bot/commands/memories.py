"""``/agent memory``: what the agent here remembers about the person asking, and forgetting it.

Only ever the caller's own memories: the scope is :func:`bot.memory.memory_scope` of the agent
here, the place's platform and workspace, and the caller's id. Nothing typed names a person, so
nobody reaches another person's memories, nor another workspace's. The listing shows facts
learned in direct messages too: it is private to the caller. Numbers are positions in the
listing (newest first), read again when a number is used, and the line saying what was
forgotten quotes it.
"""

from __future__ import annotations

import logging

from bot.commands.outcomes import Refused, Said
from bot.memory import memory_scope
from config.agents import Agent
from memory.base import MAX_PAGE, Memory, MemoryQuery, MemoryRecords, MemoryScope, PlatformKey

logger = logging.getLogger(__name__)

SHOWN = 20
"""Memories the listing numbers; ``forget N`` takes one of these."""
SHOWN_TEXT = 200
"""Characters of a memory the listing shows."""

MEMORY_OFF = "**{agent}** keeps no memories of people."
UNKNOWN_PERSON = "I can't tell who you are here, so there is nothing of yours to show."
NOTHING = "{remembers} nothing about you yet."
WHICH = "Say which: `{prefix}memory forget N` with N from `{prefix}memory`, or `forget all`."
NOT_A_NUMBER = (
    "`{typed}` is not a number: use `{prefix}memory forget N` with N from `{prefix}memory`, "
    "or `forget all`."
)
OUT_OF_RANGE = "There is no memory {number}: `{prefix}memory` numbers them 1 to {last}."
NONE_TO_FORGET = "There is no memory {number}: I remember nothing about you here."
ALREADY_GONE = "That memory is already gone."
FORGOTTEN = "Forgotten: “{text}”."
ALL_FORGOTTEN = "Forgotten: all {count} memories about you."
NOTHING_TO_FORGET = "There was nothing to forget: I remember nothing about you here."
PRIVATE_MARK = " _(from a direct message)_"


class PersonMemories:
    """Lists and forgets one person's memories of the agent here."""

    def __init__(self, store: MemoryRecords) -> None:
        self._store = store

    async def run(
        self, agent: Agent, *, key: PlatformKey, person: str, argument: str, prefix: str
    ) -> Said | Refused:
        """``argument`` is ``""`` (the listing), ``forget N``, ``forget all`` or a mistake."""
        if not agent.memory.on:
            return Said(MEMORY_OFF.format(agent=agent.name))
        scope = memory_scope(agent, key, person)
        if scope is None:
            return Refused(UNKNOWN_PERSON)
        words = argument.split()
        if not words:
            return Said(await self._listing(agent, scope, prefix))
        if words[0] != "forget" or len(words) != 2:
            return Refused(WHICH.format(prefix=prefix))
        return await self._forget(scope, words[1], prefix)

    async def _forget(self, scope: MemoryScope, which: str, prefix: str) -> Said | Refused:
        if which == "all":
            return await self._forget_all(scope)
        if not which.isdecimal():
            typed = _shown(which.replace("`", ""), 20)
            return Refused(NOT_A_NUMBER.format(typed=typed, prefix=prefix))
        return await self._forget_one(scope, int(which), prefix)

    async def _listing(self, agent: Agent, scope: MemoryScope, prefix: str) -> str:
        current = await self._current(scope, MAX_PAGE)
        remembers = _remembers(agent)
        if not current:
            return NOTHING.format(remembers=remembers[0].upper() + remembers[1:])
        lines = [f"What {remembers} about you, newest first:"]
        for number, memory in enumerate(current[:SHOWN], start=1):
            mark = PRIVATE_MARK if memory.private else ""
            lines.append(f"{number}. {_shown(memory.text, SHOWN_TEXT)}{mark}")
        more = len(current) - SHOWN
        if more > 0:
            at_least = "at least " if len(current) == MAX_PAGE else ""
            lines.append(f"…and {at_least}{more} more (forget some to see them).")
        lines.append(
            f"Forget one: `{prefix}memory forget N`; all of them: `{prefix}memory forget all`."
        )
        return "\n".join(lines)

    async def _forget_one(self, scope: MemoryScope, number: int, prefix: str) -> Refused | Said:
        shown = await self._current(scope, SHOWN)
        if not shown:
            return Refused(NONE_TO_FORGET.format(number=number))
        if not 1 <= number <= len(shown):
            return Refused(OUT_OF_RANGE.format(number=number, prefix=prefix, last=len(shown)))
        memory = shown[number - 1]
        # the store forgets the older versions it superseded with it (its history)
        if not await self._store.forget_memories(ids=[memory.id]):
            return Refused(ALREADY_GONE)
        logger.info("memory %s forgotten at its person's request", memory.id)
        return Said(FORGOTTEN.format(text=_shown(memory.text, SHOWN_TEXT)))

    async def _forget_all(self, scope: MemoryScope) -> Said:
        count = await self._store.forget_memories(scope=scope)
        if not count:
            return Said(NOTHING_TO_FORGET)
        logger.info("%d memories forgotten at their person's request", count)
        return Said(ALL_FORGOTTEN.format(count=count))

    async def _current(self, scope: MemoryScope, limit: int) -> list[Memory]:
        return await self._store.list_memories(MemoryQuery.of(scope, limit=limit))


def _remembers(agent: Agent) -> str:
    return "the agents here remember" if agent.memory.shared else f"**{agent.name}** remembers"


def _shown(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
