"""The store contract for stored agents, API keys, channel binding lists and agent goal checks.

Run unchanged against each store through ``store_factory``, like ``test_store_contract.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue

import memory.mongo
from bot.errors import Conflict, StoreError
from memory.base import (
    ChannelBinding,
    ConversationQuery,
    ConversationStore,
    NewApiKey,
    NewGoalCheck,
    PlatformKey,
    is_valid_id,
)
from memory.sqlite import SqliteStore
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory

HOSTILE = ['{"$gt": ""}', "$where", ".*", "' OR 1=1 --", "%", "\x00", ""]

CHEF: dict[str, JsonValue] = {
    "name": "Chef Ünïcødé 🍝",
    "system_prompt": "Réponds en français. 日本語も。",
    "model": {"name": "gpt-4o-mini", "temperature": 0.25, "max_tokens": 800},
    "response": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"answer": {"type": "string"}, "a.b": {"enum": [1, None, True, "x"]}},
        "required": ["answer"],
    },
    "big": 2**70,
    "empty": {"list": [], "object": {}},
}


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str, key: str | None = None, **fields: Any) -> NewApiKey:
    values: dict[str, Any] = {"scope": "read", "hint": f"pk_{name[:4]}…", **fields}
    return NewApiKey(name=name, key_hash=key_hash(key or f"pk_secret_{name}"), **values)


# stored agents ---------------------------------------------------------------------------


async def test_create_get_replace_delete_agent(
    store_factory: StoreFactory, clock: FakeClock
) -> None:
    store = await store_factory()
    assert await store.get_agent(agent_id="chef") is None
    created = await store.create_agent(agent_id="chef", definition=CHEF)
    assert created.id == "chef"
    assert created.definition == CHEF
    assert created.created_at == clock.now
    assert created.updated_at == clock.now
    assert await store.get_agent(agent_id="chef") == created

    clock.advance(5)
    with pytest.raises(Conflict):
        await store.create_agent(agent_id="chef", definition={"name": "impostor"})
    assert await store.get_agent(agent_id="chef") == created

    clock.advance(5)
    replaced = await store.replace_agent(agent_id="chef", definition={"name": "Chef v2"})
    assert replaced is not None
    assert replaced.definition == {"name": "Chef v2"}
    assert replaced.created_at == created.created_at
    assert replaced.updated_at == clock.now
    assert replaced.updated_at != created.updated_at
    other_process = await store_factory()
    assert await other_process.get_agent(agent_id="chef") == replaced

    assert await store.replace_agent(agent_id="tutor", definition={"name": "x"}) is None
    assert await store.get_agent(agent_id="tutor") is None
    assert await store.delete_agent(agent_id="chef") is True
    assert await store.delete_agent(agent_id="chef") is False
    assert await other_process.get_agent(agent_id="chef") is None
    assert await store.delete_agent(agent_id="never-was") is False
    again = await store.create_agent(agent_id="chef", definition={"name": "Chef v3"})
    assert again.definition == {"name": "Chef v3"}


async def test_agent_definitions_round_trip(store_factory: StoreFactory) -> None:
    store = await store_factory()
    await store.create_agent(agent_id="chef", definition=CHEF)
    await store.create_agent(agent_id="ünï", definition={"nested": [[{"deep": ["∞", -0.5]}]]})
    reopened = await store_factory()
    chef = await reopened.get_agent(agent_id="chef")
    assert chef is not None
    assert chef.definition == CHEF
    assert chef.definition["big"] == 2**70
    unicode_agent = await reopened.get_agent(agent_id="ünï")
    assert unicode_agent is not None
    assert unicode_agent.definition == {"nested": [[{"deep": ["∞", -0.5]}]]}


async def test_list_agents_by_id(store: ConversationStore, clock: FakeClock) -> None:
    assert await store.list_agents() == []
    for agent_id in ("tutor", "chef", "sommelier", "baker"):
        clock.advance(1)
        await store.create_agent(agent_id=agent_id, definition={"name": agent_id})
    listed = await store.list_agents()
    assert [agent.id for agent in listed] == ["baker", "chef", "sommelier", "tutor"]
    assert [agent.definition["name"] for agent in listed] == [agent.id for agent in listed]
    assert [agent.id for agent in await store.list_agents(limit=2)] == ["baker", "chef"]
    assert await store.list_agents(limit=0) == []


async def test_concurrent_creates_of_one_agent_have_one_winner(
    store_factory: StoreFactory,
) -> None:
    one, two = await store_factory(), await store_factory()
    results = await asyncio.gather(
        *(
            (one if n % 2 else two).create_agent(agent_id="chef", definition={"n": n})
            for n in range(10)
        ),
        return_exceptions=True,
    )
    winners = [result for result in results if not isinstance(result, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(result, Conflict) for result in results if result not in winners)
    assert await one.get_agent(agent_id="chef") == winners[0]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_agent_ids_are_literal(store: ConversationStore, hostile: str) -> None:
    await store.create_agent(agent_id="chef", definition={"name": "Chef"})
    assert await store.get_agent(agent_id=hostile) is None
    assert await store.replace_agent(agent_id=hostile, definition={"x": 1}) is None
    assert await store.delete_agent(agent_id=hostile) is False
    chef = await store.get_agent(agent_id="chef")
    assert chef is not None
    assert chef.definition == {"name": "Chef"}


async def test_non_string_values_are_refused(store: ConversationStore) -> None:
    """A query document in place of a string must never become a MongoDB operator."""
    await store.create_agent(agent_id="chef", definition={"name": "Chef"})
    await store.add_api_key(new_key("ci"))
    operator: Any = {"$gt": ""}
    with pytest.raises((TypeError, StoreError)):
        await store.delete_agent(agent_id=operator)
    with pytest.raises((TypeError, StoreError)):
        await store.get_agent(agent_id=operator)
    with pytest.raises((TypeError, StoreError)):
        await store.find_api_key(key_hash=operator)
    assert [agent.id for agent in await store.list_agents()] == ["chef"]


# API keys --------------------------------------------------------------------------------


async def test_add_find_and_list_api_keys(store_factory: StoreFactory, clock: FakeClock) -> None:
    store = await store_factory()
    assert await store.list_api_keys() == []
    ci = await store.add_api_key(
        new_key("ci", key="pk_ci_secret", scope="write", agents=("chef", "tutor"), hint="pk_ci…")
    )
    assert is_valid_id(ci.id)
    assert (ci.name, ci.scope, ci.agents, ci.hint) == ("ci", "write", ("chef", "tutor"), "pk_ci…")
    assert ci.key_hash == key_hash("pk_ci_secret")
    assert ci.created_at == clock.now
    assert ci.last_used_at is None
    assert ci.revoked_at is None

    clock.advance(1)
    admin = await store.add_api_key(new_key("admin", scope="admin"))
    assert admin.agents == ()
    assert admin.id != ci.id

    other_process = await store_factory()
    assert await other_process.find_api_key(key_hash=key_hash("pk_ci_secret")) == ci
    assert await other_process.find_api_key(key_hash=admin.key_hash) == admin
    assert await store.find_api_key(key_hash=key_hash("pk_unknown")) is None
    assert await other_process.list_api_keys() == [ci, admin]


async def test_api_keys_keep_their_place_limits(
    store_factory: StoreFactory, clock: FakeClock
) -> None:
    store = await store_factory()
    slack = await store.add_api_key(
        new_key("slack-t1", platforms=("slack",), workspaces=("T01ABC", "dm"), agents=("chef",))
    )
    assert (slack.platforms, slack.workspaces) == (("slack",), ("T01ABC", "dm"))
    clock.advance(1)
    everywhere = await store.add_api_key(new_key("everywhere"))
    assert (everywhere.platforms, everywhere.workspaces) == ((), ())

    other_process = await store_factory()
    assert await other_process.find_api_key(key_hash=slack.key_hash) == slack
    assert await other_process.list_api_keys() == [slack, everywhere]


def test_new_api_key_validates_place_limits() -> None:
    for workspace in ("", '{"$gt": ""}', "T1 T2", "-T1", "a" * 65, "dm\n", "ÉQUIPE"):
        with pytest.raises(ValueError, match="workspaces"):
            new_key("ci", workspaces=(workspace,))
    with pytest.raises(ValueError, match="platforms"):
        new_key("ci", platforms=("telegram",))
    with pytest.raises(ValueError, match="workspaces"):
        new_key("ci", workspaces=tuple(f"T{n}" for n in range(101)))
    limited = new_key("ci", workspaces=("T0123ABCD", "123456789012345678", "dm", "a" * 64))
    assert len(limited.workspaces) == 4


async def test_api_keys_list_oldest_first(store: ConversationStore, clock: FakeClock) -> None:
    names = ["zulu", "alpha", "mike"]
    for name in names:
        clock.advance(1)
        await store.add_api_key(new_key(name))
    assert [key.name for key in await store.list_api_keys()] == names


async def test_duplicate_api_keys_conflict(store: ConversationStore) -> None:
    first = await store.add_api_key(new_key("ci", key="pk_one"))
    with pytest.raises(Conflict):
        await store.add_api_key(new_key("ci", key="pk_two"))
    with pytest.raises(Conflict):
        await store.add_api_key(new_key("deploy", key="pk_one"))
    assert await store.list_api_keys() == [first]
    assert await store.find_api_key(key_hash=key_hash("pk_two")) is None


async def test_revoke_frees_the_name(store: ConversationStore, clock: FakeClock) -> None:
    old = await store.add_api_key(new_key("ci", key="pk_old"))
    clock.advance(2)
    assert await store.revoke_api_key(key_id=old.id) is True
    assert await store.revoke_api_key(key_id=old.id) is False
    revoked = await store.find_api_key(key_hash=old.key_hash)
    assert revoked is not None
    assert revoked.revoked_at == clock.now
    assert revoked.model_copy(update={"revoked_at": None}) == old

    clock.advance(1)
    new = await store.add_api_key(new_key("ci", key="pk_new"))
    assert new.id != old.id
    assert new.revoked_at is None
    with pytest.raises(Conflict):
        await store.add_api_key(new_key("ci", key="pk_newer"))
    with pytest.raises(Conflict):
        await store.add_api_key(new_key("other", key="pk_old"))
    assert [key.id for key in await store.list_api_keys()] == [old.id, new.id]
    assert (await store.list_api_keys())[0].revoked_at == revoked.revoked_at

    assert await store.revoke_api_key(key_id="f" * 32) is False
    assert await store.revoke_api_key(key_id='{"$gt": ""}') is False
    still = await store.find_api_key(key_hash=new.key_hash)
    assert still is not None
    assert still.revoked_at is None


async def test_touch_api_key_uses_the_store_clock(
    store: ConversationStore, clock: FakeClock
) -> None:
    key = await store.add_api_key(new_key("ci"))
    other = await store.add_api_key(new_key("other"))
    clock.advance(30)
    await store.touch_api_key(key_id=key.id)
    touched = await store.find_api_key(key_hash=key.key_hash)
    assert touched is not None
    assert touched.last_used_at == clock.now
    assert touched.created_at == key.created_at
    untouched = await store.find_api_key(key_hash=other.key_hash)
    assert untouched == other

    clock.advance(30)
    await store.touch_api_key(key_id=key.id)
    again = await store.find_api_key(key_hash=key.key_hash)
    assert again is not None
    assert again.last_used_at == clock.now
    await store.touch_api_key(key_id="e" * 32)
    await store.touch_api_key(key_id="not an id")
    assert len(await store.list_api_keys()) == 2


async def test_concurrent_adds_of_one_name_have_one_winner(store_factory: StoreFactory) -> None:
    one, two = await store_factory(), await store_factory()
    results = await asyncio.gather(
        *((one if n % 2 else two).add_api_key(new_key("ci", key=f"pk_{n}")) for n in range(10)),
        return_exceptions=True,
    )
    winners = [result for result in results if not isinstance(result, BaseException)]
    assert len(winners) == 1
    assert sum(isinstance(result, Conflict) for result in results) == 9
    assert await one.list_api_keys() == winners


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_find_api_key_is_literal(store: ConversationStore, hostile: str) -> None:
    await store.add_api_key(new_key("ci"))
    assert await store.find_api_key(key_hash=hostile) is None
    assert await store.find_api_key(key_hash=key_hash(hostile)) is None


def test_new_api_key_validates() -> None:
    with pytest.raises(ValueError, match="key_hash"):
        NewApiKey(name="ci", scope="read", key_hash='{"$gt": ""}', hint="")
    with pytest.raises(ValueError, match="name"):
        NewApiKey(name="", scope="read", key_hash="a" * 64, hint="")
    with pytest.raises(ValueError, match="scope"):
        NewApiKey(name="ci", scope="root", key_hash="a" * 64, hint="")  # type: ignore[arg-type]


# channel bindings ------------------------------------------------------------------------


async def test_list_channel_bindings(store_factory: StoreFactory, clock: FakeClock) -> None:
    store = await store_factory()
    assert await store.list_channel_bindings() == []
    await store.bind_channel(platform="slack", workspace="T_B", channel="C9", agent_id="chef")
    await store.bind_channel(platform="slack", workspace="T_A", channel="C1", agent_id="chef")
    await store.bind_channel(platform="discord", workspace="9001", channel="42", agent_id="tutor")
    await store.bind_channel(platform="slack", workspace="T_A", channel="C2", agent_id="chef")
    clock.advance(1)
    await store.bind_channel(platform="slack", workspace="T_A", channel="C2", agent_id="tutor")

    every = [
        ChannelBinding(platform="discord", workspace="9001", channel="42", agent_id="tutor"),
        ChannelBinding(platform="slack", workspace="T_A", channel="C1", agent_id="chef"),
        ChannelBinding(platform="slack", workspace="T_A", channel="C2", agent_id="tutor"),
        ChannelBinding(platform="slack", workspace="T_B", channel="C9", agent_id="chef"),
    ]
    other_process = await store_factory()
    assert await other_process.list_channel_bindings() == every
    assert await store.list_channel_bindings(agent_id="chef") == [every[1], every[3]]
    assert await store.list_channel_bindings(agent_id="tutor") == [every[0], every[2]]
    assert await store.list_channel_bindings(agent_id="tutor", limit=1) == [every[0]]
    assert await store.list_channel_bindings(limit=2) == every[:2]
    assert await store.list_channel_bindings(agent_id="sommelier") == []
    assert await store.list_channel_bindings(agent_id='{"$gt": ""}') == []


async def test_channel_bindings_with_empty_workspace(store: ConversationStore) -> None:
    await store.bind_channel(platform="console", workspace="", channel="demo", agent_id="chef")
    assert await store.list_channel_bindings() == [
        ChannelBinding(platform="console", workspace="", channel="demo", agent_id="chef")
    ]


# goal checks across an agent -------------------------------------------------------------


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
    monkeypatch.setattr(memory.mongo, "_PLACE_BATCH", 2)
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


# SQLite: upgrades and query plans --------------------------------------------------------


async def test_sqlite_opens_a_previous_release_database(tmp_path: Path) -> None:
    """A file from before stored agents, API keys and the search index existed opens, and
    gains them."""
    path = tmp_path / "old.sqlite3"
    store = SqliteStore(path=path)
    await store.open()
    conversation, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="api", channel="shop"), agent_id="chef", title="Straße"
    )
    await store.close()
    db = sqlite3.connect(path)
    with db:
        triggers = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for (trigger,) in triggers:
            db.execute(f"DROP TRIGGER {trigger}")
        for table in (
            "agents",
            "api_keys",
            "conversation_search_text",
            "conversation_search_folded",
            "conversation_search",
            "conversation_search_pending",
        ):
            db.execute(f"DROP TABLE {table}")
        for name in (
            "conversations_agent_updated",
            "conversations_agent_created",
            "conversations_platform_updated",
            "conversations_platform_created",
            "conversations_created_id",
            "conversations_updated_id",
            "goal_checks_agent",
            "channel_bindings_agent",
        ):
            db.execute(f"DROP INDEX {name}")
        db.execute("CREATE INDEX conversations_agent ON conversations (agent_id, updated_at)")
        db.execute("CREATE INDEX conversations_updated ON conversations (updated_at)")
    db.close()

    reopened = SqliteStore(path=path)
    await reopened.open()
    try:
        assert await reopened.get_conversation(conversation_id=conversation.id) == conversation
        page = await reopened.list_conversations(ConversationQuery(agent_id="chef"))
        assert [item.id for item in page.items] == [conversation.id]
        for text in ("STRASSE", "ss", "ße"):
            page = await reopened.list_conversations(ConversationQuery(text=text))
            assert [item.id for item in page.items] == [conversation.id]
        assert (await reopened.list_conversations(ConversationQuery(text="strand"))).total == 0
        await reopened.create_agent(agent_id="chef", definition={"name": "Chef"})
        await reopened.add_api_key(new_key("ci"))
        assert [agent.id for agent in await reopened.list_agents()] == ["chef"]
    finally:
        await reopened.close()
    db = sqlite3.connect(path)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    db.close()
    assert {"conversations_agent_updated", "goal_checks_agent"} <= indexes
    assert "conversations_agent" not in indexes


async def test_sqlite_keys_from_before_place_limits_reach_everywhere(tmp_path: Path) -> None:
    """A file whose api_keys table has no platforms and workspaces columns gains them; its
    keys read as limited to no place, and new keys keep their limits."""
    path = tmp_path / "keys.sqlite3"
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL,"
            " agents TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL,"
            " created_at INTEGER NOT NULL, last_used_at INTEGER, revoked_at INTEGER)"
        )
        db.execute(
            "INSERT INTO api_keys (id, name, scope, agents, key_hash, hint, created_at)"
            " VALUES (?, 'old', 'read', '[\"chef\"]', ?, 'pk_old…', 0)",
            ("a" * 32, key_hash("pk_old")),
        )
    db.close()
    for _ in range(2):  # the second open finds the columns there already
        store = SqliteStore(path=path)
        await store.open()
        try:
            old = await store.find_api_key(key_hash=key_hash("pk_old"))
            assert old is not None
            assert (old.agents, old.platforms, old.workspaces) == (("chef",), (), ())
        finally:
            await store.close()
    store = SqliteStore(path=path)
    await store.open()
    try:
        new = await store.add_api_key(new_key("new", platforms=("discord",), workspaces=("dm",)))
        assert await store.find_api_key(key_hash=new.key_hash) == new
    finally:
        await store.close()


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
