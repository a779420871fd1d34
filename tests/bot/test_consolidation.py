"""What a consolidation's answer may change: only sensible replacements are applied."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.consolidation import numbered, replacements
from memory.base import Memory, MemoryScope

SCOPE = MemoryScope(platform="slack", workspace="T1", person="U_ADA", agent_id="chef")


def memories(*texts: str) -> list[Memory]:
    return [
        Memory(
            id=f"{n:032x}",
            scope=SCOPE,
            text=text,
            created_at=datetime(2026, 1, n, tzinfo=UTC),
        )
        for n, text in enumerate(texts, start=1)
    ]


def test_the_model_sees_the_facts_numbered_oldest_first_with_their_day() -> None:
    assert numbered(memories("Lives in Paris", "Moved to Berlin")) == (
        "1. (2026-01-01) Lives in Paris\n2. (2026-01-02) Moved to Berlin"
    )


def test_only_a_later_listed_fact_replaces_an_earlier_one_once() -> None:
    facts = memories("a", "b", "c", "d")
    answer = {
        "replaced": [
            {"old": 1, "by": 2},
            {"old": 1, "by": 3},  # replaced once: the first answer stands
            {"old": 3, "by": 2},  # the replacing fact must be later
            {"old": 2, "by": 2},
            {"old": 0, "by": 1},
            {"old": 4, "by": 5},  # not listed
            {"old": "2", "by": 4},
            {"old": 2},
            "nonsense",
            {"old": 3, "by": 4},
        ]
    }
    assert replacements(facts, answer) == [(facts[0].id, facts[1].id), (facts[2].id, facts[3].id)]
    assert replacements(facts, None) == []
    assert replacements(facts, {"replaced": None}) == []
