"""The rolling summary: turns that fall out of the token budget are folded into a summary in
the background, off the reply's critical path, so early facts survive long conversations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.history import PAGE
from bot.llm import ChatRequest, ModelError
from bot.logs import context_of
from bot.prompt import ChatMessage, Prompt, transcript, usable_history
from bot.structured import StructuredReplies
from config.agents import Agent
from memory.base import Conversation, ConversationStore

logger = logging.getLogger(__name__)

SUMMARY_MARKER = "[parley:summary]"
SUMMARY_MAX_TOKENS = 500


def compaction_target(prompt: Prompt) -> int:
    """Summarise what fell out and the older half of the window, so the next turns have room
    to grow before another summary is needed (one summary call every few turns, not each)."""
    keep = prompt.included_seqs[len(prompt.included_seqs) // 2 :]
    older = [seq for seq in prompt.included_seqs if seq < keep[0]] if keep else []
    return max([prompt.dropped_through, *older])


def summary_instructions(agent: Agent) -> str:
    return (
        f"{SUMMARY_MARKER} You keep the memory of a conversation between {agent.name} and "
        "the people it talks to. Rewrite the summary so that it covers the earlier summary and "
        "the new turns. Keep every durable fact: names, preferences, allergies, decisions, "
        "open questions and promises. Plain text, at most 200 words, no preamble."
    )


class RollingSummary:
    """Schedules summary updates: at most one per conversation, a bounded number at once."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        replies: StructuredReplies,
        model_for: Callable[[Agent], str],
        concurrency: int = 2,
        max_pending: int = 10_000,
    ) -> None:
        self._store = store
        self._replies = replies
        self._model_for = model_for
        self._slots = asyncio.Semaphore(concurrency)
        self._max_pending = max_pending
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    def schedule(self, conversation: Conversation, agent: Agent, through: int) -> None:
        """Fold every message up to ``through`` into the summary, unless already under way."""
        if conversation.id in self._tasks or len(self._tasks) >= self._max_pending:
            return
        task = asyncio.create_task(self._update(conversation.id, agent, through))
        self._tasks[conversation.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(conversation.id, None))

    async def _update(self, conversation_id: str, agent: Agent, through: int) -> None:
        async with self._slots:
            conversation = await self._store.get_conversation(conversation_id=conversation_id)
            if conversation is None or conversation.summary_seq >= through:
                return
            context = context_of(conversation)
            try:
                summary = await self._fold(conversation, agent, through)
                await self._store.set_summary(
                    conversation_id=conversation_id, summary=summary, summary_seq=through
                )
            except ModelError as exc:
                logger.warning("summary not updated: %s", exc, extra=context)
                return
            except Exception:
                logger.exception("summary update failed", extra=context)
                return
            logger.debug("summary now covers messages 1-%d", through, extra=context)

    async def _fold(self, conversation: Conversation, agent: Agent, through: int) -> str:
        """The summary extended with every message up to ``through``, a page at a time."""
        summary = conversation.summary
        after = conversation.summary_seq
        while after < through:
            page = await self._store.list_messages(
                conversation_id=conversation.id,
                after_seq=after,
                before_seq=through + 1,
                limit=PAGE * 2,
            )
            if not page:
                break
            after = page[-1].seq
            turns = usable_history(page, agent)
            if not turns:
                continue
            request = ChatRequest(
                model=self._model_for(agent),
                messages=(
                    ChatMessage(role="system", content=summary_instructions(agent)),
                    ChatMessage(role="user", content=transcript(summary, turns, agent)),
                ),
                temperature=0.2,
                max_tokens=SUMMARY_MAX_TOKENS,
                provider=agent.provider,
                metadata={
                    "conversation_id": conversation.id,
                    "agent_id": agent.id,
                    "purpose": "summary",
                },
            )
            folded = await self._replies.generate(
                request, schema=None, reply_field=None, stream=False
            )
            summary = folded.text or summary
        return summary
