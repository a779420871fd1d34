"""The one contract every ConversationStore keeps, run unchanged against each store."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.errors import NotFound
from memory.base import (
    ConversationQuery,
    ConversationStore,
    NewGoalCheck,
    NewMessage,
    PlatformKey,
    is_valid_id,
)
from memory.export import export_conversation
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory

SLACK_A = PlatformKey(platform="slack", workspace="T_A", channel="C1", thread="1700000000.000100")
SLACK_B = PlatformKey(platform="slack", workspace="T_B", channel="C1", thread="1700000000.000100")
DISCORD = PlatformKey(platform="discord", workspace="9001", channel="42")


def user(text: str, **kwargs: object) -> NewMessage:
    fields: dict[str, object] = {"author_id": "U1", "author_name": "Ada", **kwargs}
    return NewMessage(role="user", text=text, **fields)  # type: ignore[arg-type]


def reply(text: str, **kwargs: object) -> NewMessage:
    return NewMessage(role="assistant", text=text, **kwargs)  # type: ignore[arg-type]


async def test_ping_and_description(store: ConversationStore) -> None:
    assert await store.ping() is True
    assert store.description


async def test_open_is_idempotent(store: ConversationStore) -> None:
    await store.open()
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await store.open()
    assert await store.get_conversation(conversation_id=conversation.id) == conversation


# conversations ---------------------------------------------------------------------------


async def test_get_or_create_creates_once(store: ConversationStore, clock: FakeClock) -> None:
    first, created = await store.get_or_create_conversation(
        key=SLACK_A, agent_id="chef", title="Dinner"
    )
    assert created is True
    assert is_valid_id(first.id)
    assert first.agent_id == "chef"
    assert first.key == SLACK_A
    assert first.title == "Dinner"
    assert first.created_at == clock.now
    assert first.updated_at == clock.now
    assert first.message_count == 0
    assert first.closed_at is None
    assert first.goal is None

    clock.advance(5)
    again, created_again = await store.get_or_create_conversation(key=SLACK_A, agent_id="other")
    assert created_again is False
    assert again == first


async def test_get_or_create_is_atomic_under_concurrency(store: ConversationStore) -> None:
    results = await asyncio.gather(
        *(store.get_or_create_conversation(key=DISCORD, agent_id="chef") for _ in range(50))
    )
    assert len({conversation.id for conversation, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_find_and_get(store: ConversationStore) -> None:
    assert await store.find_conversation(key=SLACK_A) is None
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    assert await store.find_conversation(key=SLACK_A) == conversation
    assert await store.get_conversation(conversation_id=conversation.id) == conversation
    assert await store.get_conversation(conversation_id="0" * 32) is None
    assert await store.get_conversation(conversation_id='{"$gt": ""}') is None


async def test_workspaces_are_isolated(store: ConversationStore) -> None:
    """Same channel and thread ids in two workspaces are two conversations."""
    a, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    b, _ = await store.get_or_create_conversation(key=SLACK_B, agent_id="chef")
    assert a.id != b.id
    await store.append_message(conversation_id=a.id, message=user("my name is Bob"))
    assert await store.list_messages(conversation_id=b.id) == []
    found = await store.find_conversation(key=SLACK_B)
    assert found is not None
    assert found.id == b.id
    page = await store.list_conversations(ConversationQuery(workspace="T_B"))
    assert [c.id for c in page.items] == [b.id]


async def test_close_frees_the_key(store: ConversationStore, clock: FakeClock) -> None:
    old, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await store.append_message(conversation_id=old.id, message=user("hello"))
    clock.advance(1)
    assert await store.close_conversation(conversation_id=old.id) is True
    assert await store.close_conversation(conversation_id=old.id) is False
    assert await store.find_conversation(key=SLACK_A) is None

    new, created = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    assert created is True
    assert new.id != old.id
    closed = await store.get_conversation(conversation_id=old.id)
    assert closed is not None
    assert closed.closed_at == clock.now
    assert closed.key == SLACK_A
    assert [m.text for m in await store.list_messages(conversation_id=old.id)] == ["hello"]
    assert await store.list_messages(conversation_id=new.id) == []


async def test_update_conversation(store: ConversationStore, clock: FakeClock) -> None:
    conversation, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef")
    clock.advance(2)
    updated = await store.update_conversation(
        conversation_id=conversation.id,
        data={"order": 17, "items": ["bread", None], "nested": {"ok": True}},
        source="web-shop",
        tags=["vip", "dinner"],
    )
    assert updated is not None
    assert updated.data == {"order": 17, "items": ["bread", None], "nested": {"ok": True}}
    assert updated.source == "web-shop"
    assert updated.tags == ("vip", "dinner")
    assert updated.updated_at == clock.now
    assert updated.agent_id == "chef"

    only_title = await store.update_conversation(
        conversation_id=conversation.id, title="Paella night", source=None
    )
    assert only_title is not None
    assert only_title.title == "Paella night"
    assert only_title.source is None
    assert only_title.tags == ("vip", "dinner")
    assert only_title.data == updated.data

    rebound = await store.update_conversation(conversation_id=conversation.id, agent_id="sommelier")
    assert rebound is not None
    assert rebound.agent_id == "sommelier"
    assert await store.get_conversation(conversation_id=conversation.id) == rebound
    assert await store.update_conversation(conversation_id="f" * 32, tags=["x"]) is None


async def test_set_summary_keeps_the_newest(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef")
    assert await store.set_summary(
        conversation_id=conversation.id, summary="Ada likes fish.", summary_seq=10
    )
    assert not await store.set_summary(
        conversation_id=conversation.id, summary="stale", summary_seq=4
    )
    stored = await store.get_conversation(conversation_id=conversation.id)
    assert stored is not None
    assert (stored.summary, stored.summary_seq) == ("Ada likes fish.", 10)
    assert not await store.set_summary(conversation_id="a" * 32, summary="x", summary_seq=1)


async def test_delete_conversation_removes_everything(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    other, _ = await store.get_or_create_conversation(key=SLACK_B, agent_id="chef")
    for text in ("one", "two"):
        await store.append_message(conversation_id=conversation.id, message=user(text))
    await store.append_message(conversation_id=other.id, message=user("kept"))
    await store.add_goal_check(
        NewGoalCheck(
            conversation_id=conversation.id,
            agent_id="chef",
            reached=False,
            summary="s",
            covered_seq=2,
        )
    )
    assert await store.delete_conversation(conversation_id=conversation.id) is True
    assert await store.get_conversation(conversation_id=conversation.id) is None
    assert await store.list_messages(conversation_id=conversation.id) == []
    assert await store.list_goal_checks(conversation_id=conversation.id) == []
    assert await store.delete_conversation(conversation_id=conversation.id) is False
    assert [m.text for m in await store.list_messages(conversation_id=other.id)] == ["kept"]
    recreated, created = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    assert created is True
    assert recreated.id != conversation.id


# listing and search ----------------------------------------------------------------------


async def _three_conversations(store: ConversationStore, clock: FakeClock) -> tuple[str, str, str]:
    a, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef", title="Paella")
    clock.advance(1)
    b, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef", title="Tapas 100%")
    clock.advance(1)
    c, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="api", channel="shop"), agent_id="tutor", title="Fractions"
    )
    await store.update_conversation(conversation_id=a.id, tags=["vip"])
    await store.update_conversation(conversation_id=c.id, tags=["vip", "school"], source="crm")
    return a.id, b.id, c.id


async def test_list_filters(store: ConversationStore, clock: FakeClock) -> None:
    a, b, c = await _three_conversations(store, clock)

    async def ids(**filters: object) -> list[str]:
        page = await store.list_conversations(ConversationQuery(**filters))  # type: ignore[arg-type]
        assert page.total == len(page.items)
        return sorted(conversation.id for conversation in page.items)

    assert await ids() == sorted([a, b, c])
    assert await ids(agent_id="chef") == sorted([a, b])
    assert await ids(platform="discord") == [b]
    assert await ids(tag="vip") == sorted([a, c])
    assert await ids(tag="vip", agent_id="tutor") == [c]
    assert await ids(text="paELLa") == [a]
    assert await ids(text="crm") == [c]
    assert await ids(text="100%") == [b]
    assert await ids(text="%") == [b]
    assert await ids(text="_") == []
    assert await ids(agent_id="nobody") == []


@pytest.mark.parametrize(
    "hostile",
    ['{"$gt": ""}', "$where", ".*", "^", "(a+)+$", "\\", "' OR 1=1 --", "%%", "[a-z]"],
)
async def test_search_text_is_literal(
    store: ConversationStore, clock: FakeClock, hostile: str
) -> None:
    await _three_conversations(store, clock)
    page = await store.list_conversations(ConversationQuery(text=hostile))
    assert page.items == ()
    assert page.total == 0
    assert (await store.list_conversations(ConversationQuery(agent_id=hostile))).total == 0
    assert (await store.list_conversations(ConversationQuery(tag=hostile))).total == 0


async def test_list_order_limit_offset(store: ConversationStore, clock: FakeClock) -> None:
    a, b, c = await _three_conversations(store, clock)
    clock.advance(10)
    await store.append_message(conversation_id=a, message=user("bump"))

    newest = await store.list_conversations(ConversationQuery(order="updated_desc"))
    assert [conversation.id for conversation in newest.items] == [a, c, b]
    oldest_created = await store.list_conversations(ConversationQuery(order="created_asc"))
    assert [conversation.id for conversation in oldest_created.items] == [a, b, c]
    newest_created = await store.list_conversations(ConversationQuery(order="created_desc"))
    assert [conversation.id for conversation in newest_created.items] == [c, b, a]

    page = await store.list_conversations(ConversationQuery(order="updated_asc", limit=1, offset=1))
    assert page.total == 3
    assert [conversation.id for conversation in page.items] == [c]
    beyond = await store.list_conversations(ConversationQuery(limit=5, offset=10))
    assert beyond.items == ()
    assert beyond.total == 3


async def test_list_can_leave_out_closed(store: ConversationStore, clock: FakeClock) -> None:
    a, b, c = await _three_conversations(store, clock)
    await store.close_conversation(conversation_id=b)
    page = await store.list_conversations(ConversationQuery(include_closed=False))
    assert sorted(conversation.id for conversation in page.items) == sorted([a, c])
    assert page.total == 2


async def test_list_within_key_limits(store: ConversationStore, clock: FakeClock) -> None:
    """An API key's limits (agent_ids, platforms, workspaces) filter in the store: pages and
    totals count only what the key may see, and a filter outside them matches nothing."""
    a, b, c = await _three_conversations(store, clock)
    clock.advance(1)
    other, _ = await store.get_or_create_conversation(key=SLACK_B, agent_id="chef", title="Paella")
    clock.advance(1)
    dm, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="discord", workspace="dm", channel="77"), agent_id="tutor"
    )

    async def ids(**filters: object) -> list[str]:
        page = await store.list_conversations(ConversationQuery(**filters))  # type: ignore[arg-type]
        assert page.total == len(page.items)
        return sorted(conversation.id for conversation in page.items)

    assert await ids(workspaces=("T_A",)) == [a]
    assert await ids(workspaces=("T_A", "9001")) == sorted([a, b])
    assert await ids(workspaces=("dm",)) == [dm.id]
    assert await ids(workspaces=("",)) == [c], "API conversations have no workspace"
    assert await ids(platforms=("slack",)) == sorted([a, other.id])
    assert await ids(platforms=("discord", "api")) == sorted([b, c, dm.id])
    assert await ids(agent_ids=("tutor",)) == sorted([c, dm.id])
    assert await ids(agent_ids=("chef", "tutor")) == sorted([a, b, c, other.id, dm.id])
    assert await ids(agent_ids=("chef",), platforms=("slack",), workspaces=("T_B",)) == [other.id]
    assert await ids(workspaces=("T_A", "T_B"), text="paella") == sorted([a, other.id])
    assert await ids(workspaces=("T_B",), tag="vip") == []
    assert await ids(workspaces=("T_A",), tag="vip") == [a]

    # A person's filter within the limits narrows them; outside them, it matches nothing.
    assert await ids(agent_ids=("chef", "tutor"), agent_id="tutor") == sorted([c, dm.id])
    assert await ids(agent_ids=("tutor",), agent_id="chef") == []
    assert await ids(platforms=("slack",), platform="discord") == []
    assert await ids(platforms=("slack", "discord"), platform="discord") == sorted([b, dm.id])
    assert await ids(workspaces=("T_A",), workspace="T_B") == []
    assert await ids(workspaces=("T_A", "T_B"), workspace="T_B") == [other.id]

    for hostile in ('{"$gt": ""}', "' OR 1=1 --", ".*", "%"):
        assert await ids(workspaces=(hostile,)) == []
        assert await ids(agent_ids=(hostile,)) == []

    first = await store.list_conversations(
        ConversationQuery(platforms=("slack", "discord"), limit=2, order="created_asc")
    )
    assert first.total == 4
    assert [conversation.id for conversation in first.items] == [a, b]
    second = await store.list_conversations(
        ConversationQuery(platforms=("slack", "discord"), limit=2, offset=2, order="created_asc")
    )
    assert second.total == 4
    assert [conversation.id for conversation in second.items] == [other.id, dm.id]


# messages --------------------------------------------------------------------------------


async def test_append_assigns_seq_and_updates_conversation(
    store: ConversationStore, clock: FakeClock
) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    clock.advance(3)
    first = await store.append_message(
        conversation_id=conversation.id,
        message=user("Hi, I am Bob", platform_message_id="1700000000.000200", token_count=7),
    )
    clock.advance(1)
    second = await store.append_message(
        conversation_id=conversation.id,
        message=reply(
            "Hello Bob",
            data={"answer": "Hello Bob", "recipes": [], "summary": None, "score": 1.5},
            token_count=5,
        ),
    )
    assert (first.seq, second.seq) == (1, 2)
    assert is_valid_id(first.id)
    assert first.id != second.id
    assert first.conversation_id == conversation.id
    assert first.role == "user"
    assert (first.author_id, first.author_name) == ("U1", "Ada")
    assert first.platform_message_id == "1700000000.000200"
    assert first.token_count == 7
    assert first.data is None
    assert second.data == {"answer": "Hello Bob", "recipes": [], "summary": None, "score": 1.5}
    assert second.created_at == clock.now

    stored = await store.get_conversation(conversation_id=conversation.id)
    assert stored is not None
    assert stored.message_count == 2
    assert stored.last_message_at == clock.now
    assert stored.updated_at == clock.now
    assert stored.goal_pending is True
    assert await store.list_messages(conversation_id=conversation.id) == [first, second]


async def test_append_to_unknown_conversation_raises(store: ConversationStore) -> None:
    with pytest.raises(NotFound):
        await store.append_message(conversation_id="e" * 32, message=user("lost?"))


async def test_append_keeps_errors(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef")
    failed = await store.append_message(
        conversation_id=conversation.id,
        message=reply("Sorry, I could not answer.", error="model timed out"),
    )
    assert failed.error == "model timed out"
    assert (await store.list_messages(conversation_id=conversation.id))[0].error == (
        "model timed out"
    )


async def test_unicode_and_large_messages_round_trip(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef")
    texts = [
        "Café crème, 日本語, emoji 🍝🇪🇸, RTL עברית, nul-free \u200b zero width",
        "x" * 100_000 + "é",
        "line one\nline two\r\n\ttabbed",
    ]
    for text in texts:
        await store.append_message(
            conversation_id=conversation.id,
            message=user(text, author_name="Zoë 🧑‍🍳"),
        )
    stored = await store.list_messages(conversation_id=conversation.id)
    assert [message.text for message in stored] == texts
    assert stored[0].author_name == "Zoë 🧑‍🍳"


async def test_list_messages_windows(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef")
    for number in range(1, 11):
        await store.append_message(conversation_id=conversation.id, message=user(f"m{number}"))

    async def seqs(**window: object) -> list[int]:
        messages = await store.list_messages(conversation_id=conversation.id, **window)  # type: ignore[arg-type]
        return [message.seq for message in messages]

    assert await seqs() == list(range(1, 11))
    assert await seqs(limit=3) == [1, 2, 3]
    assert await seqs(limit=3, newest_first=True) == [10, 9, 8]
    assert await seqs(after_seq=7) == [8, 9, 10]
    assert await seqs(before_seq=4) == [1, 2, 3]
    assert await seqs(after_seq=2, before_seq=6) == [3, 4, 5]
    assert await seqs(before_seq=6, limit=2, newest_first=True) == [5, 4]
    assert await seqs(after_seq=10) == []


async def test_fifty_writers_in_fifty_conversations_lose_nothing(
    store: ConversationStore,
) -> None:
    keys = [PlatformKey(platform="discord", workspace="g", channel=str(n)) for n in range(50)]

    async def writer(key: PlatformKey) -> str:
        conversation, _ = await store.get_or_create_conversation(key=key, agent_id="chef")
        for number in range(10):
            await store.append_message(
                conversation_id=conversation.id, message=user(f"{key.channel}:{number}")
            )
        return conversation.id

    ids = await asyncio.gather(*(writer(key) for key in keys))
    assert len(set(ids)) == 50
    for key, conversation_id in zip(keys, ids, strict=True):
        messages = await store.list_messages(conversation_id=conversation_id)
        assert [m.text for m in messages] == [f"{key.channel}:{n}" for n in range(10)]
        assert [m.seq for m in messages] == list(range(1, 11))
        stored = await store.get_conversation(conversation_id=conversation_id)
        assert stored is not None
        assert stored.message_count == 10


async def test_concurrent_appends_to_one_conversation_get_distinct_seqs(
    store: ConversationStore,
) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await asyncio.gather(
        *(
            store.append_message(conversation_id=conversation.id, message=user(str(n)))
            for n in range(50)
        )
    )
    messages = await store.list_messages(conversation_id=conversation.id)
    assert [m.seq for m in messages] == list(range(1, 51))
    assert sorted(int(m.text) for m in messages) == list(range(50))


async def test_persists_across_close_and_reopen(store_factory: StoreFactory) -> None:
    first = await store_factory()
    conversation, _ = await first.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await first.append_message(conversation_id=conversation.id, message=user("remember me"))
    await first.set_summary(conversation_id=conversation.id, summary="Bob.", summary_seq=1)
    assert await first.mark_event_processed(event_id="Ev1")
    await first.close()

    second = await store_factory()
    again, created = await second.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    assert created is False
    assert again.id == conversation.id
    assert again.summary == "Bob."
    assert [m.text for m in await second.list_messages(conversation_id=again.id)] == ["remember me"]
    assert await second.mark_event_processed(event_id="Ev1") is False


async def test_two_stores_on_the_same_data_share_one_conversation(
    store_factory: StoreFactory,
) -> None:
    """Two processes on one database get one conversation per key."""
    one, two = await store_factory(), await store_factory()
    results = await asyncio.gather(
        *(
            (one if n % 2 else two).get_or_create_conversation(key=DISCORD, agent_id="chef")
            for n in range(20)
        )
    )
    assert len({conversation.id for conversation, _ in results}) == 1
    assert sum(created for _, created in results) == 1


# processed events ------------------------------------------------------------------------


async def test_events_are_processed_once_until_they_expire(
    store: ConversationStore, clock: FakeClock
) -> None:
    assert await store.mark_event_processed(event_id="Ev123") is True
    assert await store.mark_event_processed(event_id="Ev123") is False
    assert await store.mark_event_processed(event_id="Ev124") is True
    clock.advance(86_401)
    assert await store.mark_event_processed(event_id="Ev123") is True
    assert await store.mark_event_processed(event_id="Ev123") is False


async def test_concurrent_duplicate_events_pass_once(store: ConversationStore) -> None:
    results = await asyncio.gather(
        *(store.mark_event_processed(event_id="Ev-dup") for _ in range(20))
    )
    assert results.count(True) == 1


# goal checks -----------------------------------------------------------------------------


async def test_goal_checks_update_state_and_due_list(
    store: ConversationStore, clock: FakeClock
) -> None:
    active, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    quiet, _ = await store.get_or_create_conversation(key=SLACK_B, agent_id="chef")
    other_agent, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="tutor")
    for conversation_id in (active.id, other_agent.id):
        await store.append_message(conversation_id=conversation_id, message=user("hi"))
        await store.append_message(conversation_id=conversation_id, message=reply("hello"))

    due = await store.conversations_due_for_goal_check(agent_id="chef")
    assert [conversation.id for conversation in due] == [active.id]

    clock.advance(60)
    check = await store.add_goal_check(
        NewGoalCheck(
            conversation_id=active.id,
            agent_id="chef",
            reached=False,
            summary="Talked about paella.",
            missing=("allergies",),
            covered_seq=2,
        )
    )
    assert is_valid_id(check.id)
    assert check.checked_at == clock.now
    assert check.missing == ("allergies",)
    assert check.posted_at is None
    stored = await store.get_conversation(conversation_id=active.id)
    assert stored is not None
    assert stored.goal is not None
    assert stored.goal.reached is False
    assert stored.goal.covered_seq == 2
    assert stored.goal.missing == ("allergies",)
    assert stored.goal_pending is False
    assert await store.conversations_due_for_goal_check(agent_id="chef") == []

    await store.append_message(conversation_id=active.id, message=user("no nuts please"))
    due_again = await store.conversations_due_for_goal_check(agent_id="chef")
    assert [conversation.id for conversation in due_again] == [active.id]
    assert quiet.id not in {conversation.id for conversation in due_again}

    clock.advance(60)
    assert await store.mark_goal_check_posted(check_id=check.id) is True
    assert await store.mark_goal_check_posted(check_id="d" * 32) is False
    later = await store.add_goal_check(
        NewGoalCheck(
            conversation_id=active.id,
            agent_id="chef",
            reached=True,
            summary="Recipe chosen.",
            covered_seq=3,
        )
    )
    history = await store.list_goal_checks(conversation_id=active.id)
    assert [entry.id for entry in history] == [later.id, check.id]
    assert history[1].posted_at == clock.now
    stored = await store.get_conversation(conversation_id=active.id)
    assert stored is not None
    assert stored.goal is not None
    assert stored.goal.reached is True
    assert await store.list_goal_checks(conversation_id=active.id, limit=1) == [later]


async def test_unposted_checks_are_listed_until_posted(
    store: ConversationStore, clock: FakeClock
) -> None:
    a, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    b, _ = await store.get_or_create_conversation(key=SLACK_B, agent_id="chef")
    other, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="tutor")

    async def check(conversation_id: str, agent_id: str = "chef", error: str | None = None) -> str:
        clock.advance(1)
        record = await store.add_goal_check(
            NewGoalCheck(
                conversation_id=conversation_id,
                agent_id=agent_id,
                reached=False,
                summary="s",
                covered_seq=0,
                error=error,
            )
        )
        return record.id

    first, second = await check(a.id), await check(b.id)
    await check(other.id, agent_id="tutor")
    await check(a.id, error="model timed out")
    assert [c.id for c in await store.goal_checks_to_post(agent_id="chef")] == [first, second]
    assert [c.id for c in await store.goal_checks_to_post(agent_id="chef", limit=1)] == [first]
    await store.mark_goal_check_posted(check_id=first)
    assert [c.id for c in await store.goal_checks_to_post(agent_id="chef")] == [second]


async def test_check_covering_less_than_everything_stays_pending(
    store: ConversationStore,
) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    for text in ("a", "b", "c"):
        await store.append_message(conversation_id=conversation.id, message=user(text))
    await store.add_goal_check(
        NewGoalCheck(
            conversation_id=conversation.id,
            agent_id="chef",
            reached=False,
            summary="",
            covered_seq=2,
        )
    )
    due = await store.conversations_due_for_goal_check(agent_id="chef")
    assert [c.id for c in due] == [conversation.id]


async def test_failed_goal_check_is_recorded_but_keeps_state(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await store.append_message(conversation_id=conversation.id, message=user("hi"))
    failed = await store.add_goal_check(
        NewGoalCheck(
            conversation_id=conversation.id,
            agent_id="chef",
            reached=False,
            summary="",
            covered_seq=1,
            error="model returned invalid JSON",
        )
    )
    assert failed.error == "model returned invalid JSON"
    stored = await store.get_conversation(conversation_id=conversation.id)
    assert stored is not None
    assert stored.goal is None
    assert stored.goal_pending is True
    assert await store.list_goal_checks(conversation_id=conversation.id) == [failed]


async def test_closed_conversations_are_not_due(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await store.append_message(conversation_id=conversation.id, message=user("hi"))
    await store.close_conversation(conversation_id=conversation.id)
    assert await store.conversations_due_for_goal_check(agent_id="chef") == []


# channel bindings ------------------------------------------------------------------------


async def test_channel_bindings(store_factory: StoreFactory, clock: FakeClock) -> None:
    store = await store_factory()
    where = {"platform": "slack", "workspace": "T_A", "channel": "C1"}
    assert await store.channel_agent(**where) is None  # type: ignore[arg-type]
    await store.bind_channel(**where, agent_id="chef")  # type: ignore[arg-type]
    assert await store.channel_agent(**where) == "chef"  # type: ignore[arg-type]
    clock.advance(1)
    await store.bind_channel(**where, agent_id="tutor")  # type: ignore[arg-type]
    assert await store.channel_agent(**where) == "tutor"  # type: ignore[arg-type]
    assert await store.channel_agent(platform="slack", workspace="T_B", channel="C1") is None
    assert await store.channel_agent(platform="discord", workspace="T_A", channel="C1") is None
    other_process = await store_factory()
    assert await other_process.channel_agent(**where) == "tutor"  # type: ignore[arg-type]


# claims ----------------------------------------------------------------------------------


async def test_claims_are_exclusive_until_they_expire(
    store: ConversationStore, clock: FakeClock
) -> None:
    assert await store.claim(key="goal:chef:2026-01-01T00", owner="p1", ttl_seconds=60)
    assert not await store.claim(key="goal:chef:2026-01-01T00", owner="p2", ttl_seconds=60)
    assert await store.claim(key="goal:chef:2026-01-01T00", owner="p1", ttl_seconds=60)
    assert await store.claim(key="goal:chef:2026-01-01T01", owner="p2", ttl_seconds=60)
    clock.advance(61)
    assert await store.claim(key="goal:chef:2026-01-01T00", owner="p2", ttl_seconds=60)
    assert not await store.claim(key="goal:chef:2026-01-01T00", owner="p1", ttl_seconds=60)


async def test_release_claim(store: ConversationStore) -> None:
    assert await store.claim(key="k", owner="p1", ttl_seconds=300)
    assert await store.release_claim(key="k", owner="p2") is False
    assert not await store.claim(key="k", owner="p2", ttl_seconds=300)
    assert await store.release_claim(key="k", owner="p1") is True
    assert await store.claim(key="k", owner="p2", ttl_seconds=300)


async def test_concurrent_claims_have_one_winner(store_factory: StoreFactory) -> None:
    one, two = await store_factory(), await store_factory()
    results = await asyncio.gather(
        *(
            (one if n % 2 else two).claim(key="slot", owner=f"p{n}", ttl_seconds=60)
            for n in range(20)
        )
    )
    assert results.count(True) == 1


# export ----------------------------------------------------------------------------------


async def test_export_json_and_markdown(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(
        key=SLACK_A, agent_id="chef", title="Dinner <ideas>"
    )
    await store.append_message(conversation_id=conversation.id, message=user("Hi, I am Bob 🍝"))
    await store.append_message(
        conversation_id=conversation.id,
        message=reply("Try *paella*.", data={"answer": "Try *paella*.", "recipes": ["Paella"]}),
    )

    exported = json.loads(
        await export_conversation(store, conversation_id=conversation.id, fmt="json")
    )
    assert exported["conversation"]["id"] == conversation.id
    assert exported["conversation"]["key"]["workspace"] == "T_A"
    assert [m["text"] for m in exported["messages"]] == ["Hi, I am Bob 🍝", "Try *paella*."]
    assert exported["messages"][1]["data"] == {"answer": "Try *paella*.", "recipes": ["Paella"]}

    markdown = await export_conversation(store, conversation_id=conversation.id, fmt="md")
    assert markdown.startswith("# Dinner <ideas>")
    assert "Hi, I am Bob 🍝" in markdown
    assert "Try *paella*." in markdown
    assert '"recipes": [' in markdown
    assert markdown.index("Hi, I am Bob") < markdown.index("Try *paella*.")

    with pytest.raises(NotFound):
        await export_conversation(store, conversation_id="c" * 32, fmt="md")
