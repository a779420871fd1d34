"""The usage records' contract, run unchanged against each store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from memory.base import (
    MAX_USAGE_BATCH,
    ConversationStore,
    NewUsage,
    UsageQuery,
    UsageTotal,
)
from tests.support.stores import StoreFactory

DAY_1 = datetime(2026, 3, 1, 23, 59, 59, 999_000, tzinfo=UTC)
DAY_2 = datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC)
CONV_A = "a" * 32
CONV_B = "b" * 32


def usage(
    at: datetime,
    *,
    agent: str = "chef",
    conversation: str | None = CONV_A,
    purpose: str = "reply",
    model: str = "gpt-4o-mini",
    tokens: tuple[int, int, int] = (100, 0, 10),
    estimated: bool = False,
) -> NewUsage:
    return NewUsage(
        at=at,
        agent_id=agent,
        conversation_id=conversation,
        purpose=purpose,
        model=model,
        input_tokens=tokens[0],
        cached_input_tokens=tokens[1],
        output_tokens=tokens[2],
        estimated=estimated,
    )


async def _fill(store: ConversationStore) -> None:
    added = await store.add_usage(
        [
            usage(DAY_1, tokens=(100, 40, 10)),
            usage(DAY_1, purpose="summary", tokens=(50, 0, 5)),
            usage(DAY_2, tokens=(200, 0, 20), estimated=True),
            usage(DAY_2, conversation=CONV_B, model="big-model", tokens=(7, 0, 3)),
            usage(DAY_2, agent="tutor", conversation=None, purpose="memory", tokens=(1, 0, 1)),
        ]
    )
    assert added == 5


async def test_totals_of_everything_add_up(store: ConversationStore) -> None:
    await _fill(store)
    [total] = await store.usage_totals(UsageQuery())
    assert total == UsageTotal(
        calls=5,
        input_tokens=358,
        cached_input_tokens=40,
        output_tokens=39,
        estimated_calls=1,
    )
    assert total.tokens == 397


async def test_totals_group_by_agent_and_day_in_utc(store: ConversationStore) -> None:
    await _fill(store)
    rows = await store.usage_totals(UsageQuery(group_by=("agent", "day")))
    assert [(r.day, r.agent_id, r.calls, r.tokens) for r in rows] == [
        (date(2026, 3, 1), "chef", 2, 165),
        (date(2026, 3, 2), "chef", 2, 230),
        (date(2026, 3, 2), "tutor", 1, 2),
    ]
    assert all(r.conversation_id is None and r.model is None for r in rows)


async def test_totals_group_by_conversation_purpose_and_model(store: ConversationStore) -> None:
    await _fill(store)
    rows = await store.usage_totals(
        UsageQuery(agent_id="chef", group_by=("model", "purpose", "conversation"))
    )
    assert [(r.conversation_id, r.purpose, r.model, r.input_tokens) for r in rows] == [
        (CONV_A, "reply", "gpt-4o-mini", 300),
        (CONV_A, "summary", "gpt-4o-mini", 50),
        (CONV_B, "reply", "big-model", 7),
    ]
    assert all(r.agent_id is None and r.day is None for r in rows)


async def test_a_time_range_takes_from_inclusive_to_exclusive(store: ConversationStore) -> None:
    await _fill(store)
    first = await store.usage_totals(UsageQuery(until=DAY_2))
    assert [(r.calls, r.tokens) for r in first] == [(2, 165)]
    second = await store.usage_totals(UsageQuery(since=DAY_2))
    assert [(r.calls, r.tokens) for r in second] == [(3, 232)]
    just_after = DAY_1 + timedelta(microseconds=500)  # within DAY_1's millisecond
    assert await store.usage_totals(UsageQuery(since=just_after, until=DAY_2)) == []


async def test_filters_by_conversation_and_by_a_keys_agents(store: ConversationStore) -> None:
    await _fill(store)
    [b] = await store.usage_totals(UsageQuery(conversation_id=CONV_B))
    assert (b.calls, b.input_tokens, b.output_tokens) == (1, 7, 3)
    rows = await store.usage_totals(UsageQuery(agent_ids=("tutor",), group_by=("agent",)))
    assert [(r.agent_id, r.calls) for r in rows] == [("tutor", 1)]
    outside = UsageQuery(agent_id="chef", agent_ids=("tutor",))
    assert await store.usage_totals(outside) == []


async def test_no_usage_gives_no_rows(store: ConversationStore) -> None:
    assert await store.usage_totals(UsageQuery()) == []
    assert await store.usage_totals(UsageQuery(group_by=("agent",))) == []
    assert await store.add_usage([]) == 0


async def test_limit_bounds_the_groups(store: ConversationStore) -> None:
    await _fill(store)
    rows = await store.usage_totals(UsageQuery(group_by=("purpose",), limit=2))
    assert [r.purpose for r in rows] == ["memory", "reply"]
    assert await store.usage_totals(UsageQuery(limit=0)) == []


async def test_hostile_filters_are_plain_values(store: ConversationStore) -> None:
    await _fill(store)
    for value in ['{"$gt": ""}', "' OR 1=1 --", "%", ".*"]:
        assert await store.usage_totals(UsageQuery(agent_id=value)) == []
        assert await store.usage_totals(UsageQuery(agent_ids=(value,))) == []


async def test_a_batch_is_bounded(store: ConversationStore) -> None:
    with pytest.raises(ValueError, match="at most"):
        await store.add_usage([usage(DAY_1)] * (MAX_USAGE_BATCH + 1))


async def test_usage_is_seen_by_another_store_on_the_same_data(
    store_factory: StoreFactory,
) -> None:
    first = await store_factory()
    await first.add_usage([usage(DAY_1)])
    second = await store_factory()
    [total] = await second.usage_totals(UsageQuery())
    assert total.calls == 1
