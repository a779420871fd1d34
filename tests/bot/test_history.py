"""The history a turn reads (bot/history.py): the kept tail gives the prompt that reading the
store would, reads nothing a turn of this process wrote, and reads what another wrote."""

from __future__ import annotations

from typing import Any

from bot.history import KEPT, RecentHistory, read_recent
from bot.prompt import PastMessage, Prompt, build_prompt
from config.agents import Agent
from memory.base import Conversation, ConversationStore, Message, NewMessage, PlatformKey
from tests.support.agents import agent as make_agent
from tests.support.stores import StoreFactory

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0")


def count(text: str) -> int:
    return len(text) // 4 + 1


class CountingStore:
    """The store, counting its message reads."""

    def __init__(self, store: ConversationStore) -> None:
        self._store = store
        self.reads = 0

    async def list_messages(self, **arguments: Any) -> list[Message]:
        self.reads += 1
        return await self._store.list_messages(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def say(store: ConversationStore, conversation: Conversation, n: int, role: str) -> Message:
    text = f"message {n}: " + "words " * (n % 7 * 5)
    return await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role=role, text=text, author_name="Ada" if role == "user" else "Chef"),
    )


def prompt_of(history: list[PastMessage], agent: Agent, conversation: Conversation) -> Prompt:
    return build_prompt(
        agent=agent,
        summary=conversation.summary,
        history=history,
        new_text="next",
        new_author="Ada",
        count=count,
    )


async def fresh(store: ConversationStore, conversation: Conversation) -> Conversation:
    found = await store.get_conversation(conversation_id=conversation.id)
    assert found is not None
    return found


async def test_a_kept_tail_gives_the_prompt_the_store_gives_and_reads_nothing(
    store_factory: StoreFactory,
) -> None:
    store = CountingStore(await store_factory())
    agent = make_agent(context_tokens=300)
    conversation, _ = await store.get_or_create_conversation(key=KEY, agent_id=agent.id)
    history = RecentHistory(store)  # type: ignore[arg-type]
    reads = []
    for n in range(1, 3 * KEPT, 2):  # past the budget and past what is kept
        asked = await say(store, conversation, n, "user")
        history.added(asked)
        conversation = await fresh(store, conversation)
        before = store.reads
        kept = await history.read(conversation, agent, count=count, before=asked)
        reads.append(store.reads - before)
        expected = await read_recent(
            store,  # type: ignore[arg-type]
            conversation,
            agent,
            count=count,
            before_seq=asked.seq,
        )
        read = [PastMessage.of(m) for m in expected]
        assert prompt_of(kept, agent, conversation) == prompt_of(read, agent, conversation)
        history.added(await say(store, conversation, n + 1, "assistant"))
    assert reads[0] == 1
    assert sum(reads[1:]) == 0, "every later turn used the kept tail"


async def test_what_another_process_wrote_meanwhile_is_read(
    store_factory: StoreFactory,
) -> None:
    """Two processes take turns in one conversation (the journal hands it over): each sees
    the other's messages, reading only those."""
    ours, theirs = CountingStore(await store_factory()), await store_factory()
    agent = make_agent(context_tokens=5000)
    conversation, _ = await ours.get_or_create_conversation(key=KEY, agent_id=agent.id)
    history = RecentHistory(ours)  # type: ignore[arg-type]
    asked = await say(ours, conversation, 1, "user")
    history.added(asked)
    await history.read(await fresh(ours, conversation), agent, count=count, before=asked)
    history.added(await say(ours, conversation, 2, "assistant"))

    for n in (3, 4):  # another process answers a turn
        await say(theirs, conversation, n, "user" if n == 3 else "assistant")
    asked = await say(ours, conversation, 5, "user")
    history.added(asked)
    before = ours.reads
    kept = await history.read(await fresh(ours, conversation), agent, count=count, before=asked)
    assert [m.seq for m in kept] == [1, 2, 3, 4]
    assert ours.reads - before == 1, "only the two messages written elsewhere"


async def test_a_newer_summary_leaves_out_what_it_covers(store_factory: StoreFactory) -> None:
    store = await store_factory()
    agent = make_agent(context_tokens=5000)
    conversation, _ = await store.get_or_create_conversation(key=KEY, agent_id=agent.id)
    history = RecentHistory(store)
    for n in range(1, 7):
        message = await say(store, conversation, n, "user" if n % 2 else "assistant")
        history.added(message)
        if n == 1:
            await history.read(await fresh(store, conversation), agent, count=count, before=message)
    assert await store.set_summary(
        conversation_id=conversation.id, summary="earlier", summary_seq=4
    )
    asked = await say(store, conversation, 7, "user")
    history.added(asked)
    kept = await history.read(await fresh(store, conversation), agent, count=count, before=asked)
    assert [m.seq for m in kept] == [5, 6]
