"""What an API key may see: its agents, platforms and workspaces, checked by one rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.keys import (
    ApiKeys,
    conversation_allowed,
    place_allowed,
    visible_agent,
    visible_bindings,
    within_limits,
)
from memory.base import (
    ApiKeyRecord,
    ChannelBinding,
    Conversation,
    ConversationQuery,
    Platform,
    PlatformKey,
)
from memory.sqlite import SqliteStore
from tests.support.agents import agent

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def record(**limits: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id="a" * 32, name="k", scope="read", key_hash="b" * 64, created_at=NOW, **limits
    )


def conversation(platform: Platform, workspace: str = "", agent_id: str = "chef") -> Conversation:
    key = PlatformKey(platform=platform, workspace=workspace, channel="C1")
    return Conversation(id="c" * 32, agent_id=agent_id, key=key, created_at=NOW, updated_at=NOW)


SLACK_T1 = conversation("slack", "T1")
SLACK_T2 = conversation("slack", "T2")
DISCORD_G1 = conversation("discord", "111111")
DISCORD_DM = conversation("discord", "dm")
API = conversation("api")
TERMINAL = conversation("console")
EVERY = [SLACK_T1, SLACK_T2, DISCORD_G1, DISCORD_DM, API, TERMINAL]


@pytest.mark.parametrize(
    ("limits", "seen"),
    [
        ({}, EVERY),
        ({"workspaces": ("T1",)}, [SLACK_T1]),
        ({"workspaces": ("T1", "dm")}, [SLACK_T1, DISCORD_DM]),
        ({"platforms": ("discord",)}, [DISCORD_G1, DISCORD_DM]),
        ({"platforms": ("api", "console")}, [API, TERMINAL]),
        ({"platforms": ("slack",), "workspaces": ("T2", "111111")}, [SLACK_T2]),
        ({"agents": ("plain",)}, []),
        ({"agents": ("chef",), "workspaces": ("T2",)}, [SLACK_T2]),
    ],
)
def test_a_key_sees_a_conversation_only_within_all_its_limits(
    limits: dict[str, Any], seen: list[Conversation]
) -> None:
    key = record(**limits)
    assert [c for c in EVERY if conversation_allowed(key, c)] == seen


def test_a_workspace_limit_hides_places_of_unknown_workspace() -> None:
    assert place_allowed(record(), "slack", None)
    assert place_allowed(record(platforms=("slack",)), "slack", None)
    assert not place_allowed(record(workspaces=("T1",)), "slack", None)
    assert not place_allowed(record(workspaces=("T1",)), "api", "")


def test_within_limits_hands_the_key_limits_to_the_store() -> None:
    key = record(agents=("chef",), platforms=("slack",), workspaces=("T1", "T2"))
    query = within_limits(key, ConversationQuery(tag="vip", platform="slack", limit=7))
    assert query.agent_ids == ("chef",)
    assert query.platforms == ("slack",)
    assert query.workspaces == ("T1", "T2")
    assert (query.tag, query.platform, query.limit) == ("vip", "slack", 7)
    unlimited = within_limits(record(), ConversationQuery())
    assert (unlimited.agent_ids, unlimited.platforms, unlimited.workspaces) == ((), (), ())


def test_bindings_shown_are_those_in_the_key_places() -> None:
    stored = [
        ChannelBinding(platform="slack", workspace="T1", channel="C1", agent_id="chef"),
        ChannelBinding(platform="slack", workspace="T2", channel="C2", agent_id="chef"),
        ChannelBinding(platform="discord", workspace="111111", channel="42", agent_id="chef"),
    ]
    assert visible_bindings(record(), stored) == stored
    assert visible_bindings(record(workspaces=("T1",)), stored) == stored[:1]
    assert visible_bindings(record(platforms=("discord",)), stored) == stored[2:]

    bound = agent(bindings={"slack": ["T1:C0AAA", "T2:C0BBB", "C0CCC"], "discord": ["123456789"]})
    assert visible_agent(record(), bound) is bound
    t1 = visible_agent(record(workspaces=("T1",)), bound).bindings
    assert (t1.slack, t1.discord) == (("T1:C0AAA",), ())
    slack = visible_agent(record(platforms=("slack",)), bound).bindings
    assert (slack.slack, slack.discord) == (("T1:C0AAA", "T2:C0BBB", "C0CCC"), ())
    assert visible_agent(record(workspaces=("T1",)), bound).context == bound.context


@pytest.fixture
async def keys(tmp_path: Path) -> AsyncIterator[ApiKeys]:
    store = SqliteStore(path=tmp_path / "keys.sqlite3")
    await store.open()
    yield ApiKeys(store)
    await store.close()


async def test_keys_are_made_with_their_place_limits(keys: ApiKeys) -> None:
    key, made = await keys.create(
        name="t1", scope="read", platforms=["slack", "slack"], workspaces=["T1", "dm", "T1"]
    )
    assert (made.platforms, made.workspaces) == (("slack",), ("T1", "dm"))
    found = await keys.authenticate(key)
    assert found is not None
    assert (found.platforms, found.workspaces) == (("slack",), ("T1", "dm"))
    with pytest.raises(ValueError, match="workspaces"):
        await keys.create(name="bad", scope="read", workspaces=['{"$ne": 1}'])
    assert [r.name for r in await keys.list()] == ["t1"]
