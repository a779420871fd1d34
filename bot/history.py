"""Reading the recent history of a conversation: only the tail the token budget can use."""

from __future__ import annotations

from collections.abc import Callable

from bot.prompt import MESSAGE_OVERHEAD_TOKENS, history_content, usable_history
from config.agents import Agent
from memory.base import Conversation, ConversationStore, Message

PAGE = 64


async def read_recent(
    store: ConversationStore,
    conversation: Conversation,
    agent: Agent,
    *,
    count: Callable[[str], int],
    before_seq: int | None = None,
) -> list[Message]:
    """The messages after the summary, oldest first, read newest first a page at a time until
    they fill the agent's budget: a conversation of 100,000 messages costs what one of ten
    does."""
    tail: list[Message] = []
    tokens = 0
    before = before_seq
    while tokens <= agent.context_tokens:
        page = await store.list_messages(
            conversation_id=conversation.id,
            after_seq=conversation.summary_seq,
            before_seq=before,
            limit=PAGE,
            newest_first=True,
        )
        tail.extend(page)
        for message in usable_history(page, agent):
            tokens += (message.token_count or count(history_content(message))) + (
                MESSAGE_OVERHEAD_TOKENS
            )
        if len(page) < PAGE:
            break
        before = page[-1].seq
    tail.reverse()
    return tail
