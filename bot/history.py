"""Reading the recent history of a conversation: only the tail the token budget can use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.lru import BoundedLRU
from bot.prompt import PastMessage
from config.agents import Agent
from memory.base import Conversation, ConversationStore, Message

PAGE = 64
KEPT = 2 * PAGE
"""The most messages of one conversation :class:`RecentHistory` keeps."""


def history_tokens(
    messages: Sequence[PastMessage], agent: Agent, count: Callable[[str], int]
) -> int:
    """What ``messages`` weigh against the agent's history budget."""
    return sum(message.cost(count) for message in messages if message.shown(agent))


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
    messages, _ = await _read_tail(store, conversation, agent, count=count, before_seq=before_seq)
    return messages


async def _read_tail(
    store: ConversationStore,
    conversation: Conversation,
    agent: Agent,
    *,
    count: Callable[[str], int],
    before_seq: int | None,
) -> tuple[list[Message], list[PastMessage]]:
    """:func:`read_recent`'s messages, and each as a prompt uses it."""
    messages: list[Message] = []
    past: list[PastMessage] = []
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
        seen = [PastMessage.of(message) for message in page]
        messages.extend(page)
        past.extend(seen)
        tokens += history_tokens(seen, agent, count)
        if len(page) < PAGE:
            break
        before = page[-1].seq
    messages.reverse()
    past.reverse()
    return messages, past


@dataclass
class _Tail:
    messages: list[PastMessage]
    """Oldest first: every message of the conversation after ``floor`` up to ``last``."""
    floor: int
    last: int


class RecentHistory:
    """The tail a conversation's last turn here read, kept with the messages written since
    (bounded), so the next turn reads nothing: or only what another process wrote meanwhile,
    told by the sequence numbers. Messages never change once stored, so what is kept is
    never stale. It is kept as prompts use it (:class:`~bot.prompt.PastMessage`)."""

    def __init__(self, store: ConversationStore, *, capacity: int = 1000) -> None:
        self._store = store
        self._tails: BoundedLRU[str, _Tail] = BoundedLRU(capacity)

    def added(self, message: Message) -> None:
        """A message this process stored."""
        tail = self._tails.get(message.conversation_id)
        if tail is None:
            return
        if message.seq != tail.last + 1:  # another process wrote in between: read it next time
            self._tails.pop(message.conversation_id)
            return
        tail.messages.append(PastMessage.of(message))
        tail.last = message.seq
        if len(tail.messages) > KEPT:
            del tail.messages[: len(tail.messages) - KEPT]
            tail.floor = tail.messages[0].seq - 1

    async def read(
        self,
        conversation: Conversation,
        agent: Agent,
        *,
        count: Callable[[str], int],
        before: Message,
    ) -> list[PastMessage]:
        """What :func:`read_recent` gives, as prompts use it: the messages before ``before``,
        the turn's own message, stored already."""
        before_seq = before.seq
        tail = await self._caught_up(conversation.id, before_seq)
        if tail is not None:
            window = [m for m in tail.messages if conversation.summary_seq < m.seq < before_seq]
            if tail.floor <= conversation.summary_seq or _fills(window, agent, count):
                if tail.last < before_seq:
                    self.added(before)
                return window
        _, messages = await _read_tail(
            self._store, conversation, agent, count=count, before_seq=before_seq
        )
        floor = messages[0].seq - 1 if messages else conversation.summary_seq
        kept = [*messages, PastMessage.of(before)]
        self._tails.put(conversation.id, _Tail(kept, floor, before_seq))
        return messages

    async def _caught_up(self, conversation_id: str, before_seq: int) -> _Tail | None:
        """The kept tail, with what others wrote since read in; None when there is none."""
        tail = self._tails.get(conversation_id)
        if tail is None or tail.last >= before_seq - 1:
            return tail
        missing = before_seq - 1 - tail.last
        if missing > PAGE:
            return None
        more = await self._store.list_messages(
            conversation_id=conversation_id,
            after_seq=tail.last,
            before_seq=before_seq,
            limit=missing,
        )
        if [m.seq for m in more] != list(range(tail.last + 1, before_seq)):
            return None
        for message in more:
            self.added(message)
        return self._tails.get(conversation_id)


def _fills(window: list[PastMessage], agent: Agent, count: Callable[[str], int]) -> bool:
    """Whether ``window`` holds more than the budget in whole turns: a prompt built from it
    drops what one built from all the messages would (whole turns, oldest first)."""
    first_turn = next((i for i, m in enumerate(window) if m.role == "user"), len(window))
    return history_tokens(window[first_turn:], agent, count) > agent.context_tokens
