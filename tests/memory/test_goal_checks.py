"""The goal check records' contract, run unchanged against each store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import memory.mongo.goal_checks
from memory.base import (
    ConversationStore,
    NewGoalCheck,
    PlatformKey,
    is_valid_id,
)
from tests.memory.helpers import (
    DISCORD,
    SLACK_A,
    SLACK_B,
    reply,
    user,
)
from tests.support.clock import FakeClock


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


async def test_list_agent_goal_checks(store: ConversationStore, clock: FakeClock) -> None:
    a, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="slack", workspace="T", channel="C", thread="1"), agent_id="chef"
    )
    b, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="discord", workspace="g", channel="2"), agent_id="chef"
    )
    other, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="api", channel="x"), agent_id="tutor"
    )

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

    first = await check(a.id)
    start = clock.now
    second = await check(b.id)
    await check(other.id, agent_id="tutor")
    third = await check(a.id, error="model timed out")
    fourth = await check(b.id)

    async def ids(**window: Any) -> list[str]:
        checks = await store.list_agent_goal_checks(agent_id="chef", **window)
        return [entry.id for entry in checks]

    assert await ids(since=start - timedelta(days=1)) == [first, second, third, fourth]
    assert await ids(since=start) == [first, second, third, fourth]
    assert await ids(since=start + timedelta(microseconds=1)) == [second, third, fourth]
    assert await ids(since=start + timedelta(seconds=1)) == [second, third, fourth]
    assert await ids(since=start + timedelta(seconds=1), limit=2) == [second, third]
    assert await ids(since=clock.now + timedelta(milliseconds=1)) == []
    assert await ids(since=start, limit=0) == []
    tutor = await store.list_agent_goal_checks(agent_id="tutor", since=start)
    assert [entry.conversation_id for entry in tutor] == [other.id]

    async def placed(**limits: Any) -> list[str]:
        checks = await store.list_agent_goal_checks(agent_id="chef", since=start, **limits)
        return [entry.id for entry in checks]

    assert await placed(workspaces=("T",)) == [first, third]
    assert await placed(platforms=("discord",)) == [second, fourth]
    assert await placed(platforms=("slack", "discord"), workspaces=("T", "g")) == [
        first,
        second,
        third,
        fourth,
    ]
    assert await placed(platforms=("slack",), workspaces=("g",)) == []
    assert await placed(workspaces=("T", "g"), limit=3) == [first, second, third]
    assert await placed(workspaces=("g",), limit=1) == [second]
    assert await placed(workspaces=('{"$gt": ""}',)) == []
    listed = await store.list_agent_goal_checks(agent_id="chef", since=start)
    assert listed[2].error == "model timed out"
    assert listed[0] == (await store.list_goal_checks(conversation_id=a.id))[-1]
    assert await store.list_agent_goal_checks(agent_id='{"$gt": ""}', since=start) == []


async def test_agent_goal_checks_in_places_read_past_other_places(
    store: ConversationStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks outside the places are skipped, not counted against the limit, however many
    come first (MongoDB reads them in batches: two at a time here)."""
    monkeypatch.setattr(memory.mongo.goal_checks, "_PLACE_BATCH", 2)
    mine, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="slack", workspace="T1", channel="C"), agent_id="chef"
    )
    theirs, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="slack", workspace="T2", channel="C"), agent_id="chef"
    )
    start = clock.now
    made: list[tuple[str, str]] = []
    for conversation in [theirs] * 5 + [mine, theirs, mine, mine, theirs]:
        clock.advance(1)
        check = await store.add_goal_check(
            NewGoalCheck(
                conversation_id=conversation.id,
                agent_id="chef",
                reached=False,
                summary="s",
                covered_seq=0,
            )
        )
        made.append((conversation.id, check.id))
    wanted = [check for conversation, check in made if conversation == mine.id]

    async def placed(limit: int) -> list[str]:
        checks = await store.list_agent_goal_checks(
            agent_id="chef", since=start, limit=limit, workspaces=("T1",)
        )
        return [entry.id for entry in checks]

    assert await placed(100) == wanted
    assert await placed(2) == wanted[:2]
    assert await placed(1) == wanted[:1]
    assert len(await store.list_agent_goal_checks(agent_id="chef", since=start)) == 10
