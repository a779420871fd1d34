"""The conversation records' contract, run unchanged against each store."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from memory.base import (
    ConversationQuery,
    ConversationStore,
    NewGoalCheck,
    PlatformKey,
    is_valid_id,
)
from memory.sqlite import SqliteStore
from tests.memory.helpers import DISCORD, SLACK_A, SLACK_B, user
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory


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


LISTINGS = [
    ConversationQuery(order=order, **filters)
    for order in ("updated_desc", "updated_asc", "created_desc", "created_asc")
    for filters in (
        {},
        {"agent_id": "chef"},
        {"platform": "slack"},
        {"tag": "vip"},
        {"agent_id": "chef", "include_closed": False},
        {"workspaces": ("T_A",)},
        {"agent_ids": ("chef",)},
        {"platforms": ("slack",)},
    )
]


def _listing_id(query: ConversationQuery) -> str:
    return "-".join([query.order, *map(str, query.model_dump(exclude_defaults=True).values())])


@pytest.mark.parametrize("query", LISTINGS, ids=_listing_id)
async def test_sqlite_listing_reads_indexes(tmp_path: Path, query: ConversationQuery) -> None:
    """The console's listings never read the whole conversations table, or sort it."""
    store = SqliteStore(path=tmp_path / "plans.sqlite3")
    await store.open()
    statements: list[str] = []
    db = store._db
    assert db is not None
    await db.set_trace_callback(statements.append)
    try:
        await store.list_conversations(query)
    finally:
        await db.set_trace_callback(None)
        await store.close()
    selects = [sql for sql in statements if sql.lstrip().startswith("SELECT")]
    assert len(selects) == 2
    check = sqlite3.connect(tmp_path / "plans.sqlite3")
    try:
        for sql in selects:
            plan = " | ".join(row[3] for row in check.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for step in plan.split(" | "):
                if step.startswith("SCAN conversations"):
                    # Only the unfiltered listing walks an index, in order (or counts one).
                    assert "USING" in step, plan
                    assert not query.agent_id, plan
                    assert not query.platform, plan
                    assert not query.tag, plan
                    assert not query.agent_ids, plan
                    assert not query.platforms, plan
                    assert not query.workspaces, plan
            if not query.tag:
                assert "TEMP B-TREE" not in plan, plan
    finally:
        check.close()


async def test_an_api_conversation_keeps_its_user(store_factory: StoreFactory) -> None:
    store = await store_factory()
    key = PlatformKey(platform="api", channel="d" * 32)
    conversation, _ = await store.get_or_create_conversation(key=key, agent_id="chef")
    assert conversation.user is None
    updated = await store.update_conversation(conversation_id=conversation.id, user="crm-42")
    assert updated is not None
    assert updated.user == "crm-42"
    again = await (await store_factory()).get_conversation(conversation_id=conversation.id)
    assert again is not None
    assert again.user == "crm-42"
    titled = await store.update_conversation(conversation_id=conversation.id, title="Hello")
    assert titled is not None
    assert titled.user == "crm-42", "other changes leave it"
