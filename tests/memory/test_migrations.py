"""Numbered schema migrations: SQLite's ``PRAGMA user_version``, MongoDB's version document.

Files and databases from before numbered migrations (version 0) are upgraded at ``open`` and
work; those from a newer release are refused.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from bot.errors import StoreError
from memory.base import ConversationQuery, NewJournalEntry, NewMessage, PlatformKey
from memory.mongo import MongoStore
from memory.mongo import schema as mongo_schema
from memory.sqlite import SqliteStore
from memory.sqlite import schema as sqlite_schema
from tests.memory.helpers import key_hash, new_key
from tests.support.clock import FakeClock

TODAYS_SCHEMA = Path(__file__).parent / "fixtures" / "schema_before_migrations.sql"
CONVERSATION_ID = "c" * 32
KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1700000000.000100")


def _user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def _file_from_before_migrations(path: Path) -> None:
    """A file as the store made it before numbered migrations, with a few records in it."""
    db = sqlite3.connect(path)
    with db:
        db.executescript(TODAYS_SCHEMA.read_text())
        db.execute(
            "INSERT INTO conversations (id, key_id, platform, workspace, channel, thread,"
            " agent_id, created_at, updated_at, title, summary, message_count, last_message_at)"
            " VALUES (?, ?, 'slack', 'T1', 'C1', '1700000000.000100', 'chef', 1000, 2000,"
            " 'Straße', 'Σίσυφος wants paella', 1, 2000)",
            (CONVERSATION_ID, KEY.canonical),
        )
        db.execute(
            "INSERT INTO messages (id, conversation_id, seq, role, author_id, author_name, text,"
            " created_at, token_count) VALUES (?, ?, 1, 'user', 'U1', 'Ada', 'hello', 2000, 3)",
            ("m" * 32, CONVERSATION_ID),
        )
        db.execute(
            "INSERT INTO api_keys (id, name, scope, agents, key_hash, hint, created_at)"
            " VALUES (?, 'ci', 'read', '[]', ?, 'pk_ci…', 0)",
            ("a" * 32, "f" * 64),
        )
    assert db.execute("PRAGMA user_version").fetchone() == (0,)
    db.close()


async def test_sqlite_file_made_by_todays_schema_migrates_and_works(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "before.sqlite3"
    _file_from_before_migrations(path)
    store = SqliteStore(path=path, clock=clock)
    await store.open()
    try:
        assert _user_version(path) == sqlite_schema.LATEST
        conversation = await store.find_conversation(key=KEY)
        assert conversation is not None
        assert (conversation.id, conversation.title) == (CONVERSATION_ID, "Straße")
        for needle in ("STRASSE", "σίσυφοσ", "paella"):
            page = await store.list_conversations(ConversationQuery(text=needle))
            assert [item.id for item in page.items] == [CONVERSATION_ID], needle
        [message] = await store.list_messages(conversation_id=CONVERSATION_ID)
        assert (message.seq, message.text) == (1, "hello")
        added = await store.append_message(
            conversation_id=CONVERSATION_ID, message=NewMessage(role="assistant", text="hi Ada")
        )
        assert added.seq == 2
        key = await store.find_api_key(key_hash="f" * 64)
        assert key is not None
        assert (key.name, key.platforms, key.workspaces) == ("ci", (), ())
        entry, created = await store.journal_add(
            NewJournalEntry(id="slack:1", key=KEY, position="0001", message={"text": "x"})
        )
        assert created
        assert await store.journal_advance(
            key=KEY, lease="turns:k", owner="p1", ttl_seconds=30
        ) == entry.model_copy(
            update={"attempts": 1, "updated_at": entry.updated_at, "prior_touch": entry.updated_at}
        )
    finally:
        await store.close()
    reopened = SqliteStore(path=path, clock=clock)
    await reopened.open()
    try:
        assert _user_version(path) == sqlite_schema.LATEST
        assert (await reopened.list_conversations(ConversationQuery(text="ss"))).total == 1
    finally:
        await reopened.close()


async def test_sqlite_migrations_run_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    migrations = sqlite_schema.MIGRATIONS

    def counted(number: int) -> sqlite_schema.Migration:
        async def run(db: Any) -> None:
            ran.append(number)
            await migrations[number - 1](db)

        return run

    monkeypatch.setattr(
        sqlite_schema, "MIGRATIONS", tuple(counted(n) for n in range(1, len(migrations) + 1))
    )
    path = tmp_path / "new.sqlite3"
    for _ in range(2):
        store = SqliteStore(path=path)
        await store.open()
        await store.close()
    assert ran == list(range(1, sqlite_schema.LATEST + 1))
    assert _user_version(path) == sqlite_schema.LATEST


async def test_sqlite_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    store = SqliteStore(path=path)
    await store.open()
    await store.close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {sqlite_schema.LATEST + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this release"):
        await SqliteStore(path=path).open()


async def test_mongo_database_from_before_migrations_migrates_and_works(
    secantus_uri: str, mongo_database: str, clock: FakeClock
) -> None:
    """Conversations as the store wrote them before (a ``lower()``-ed ``search`` string, no
    grams) gain the search fields, and the version document says so."""
    client: MongoClient[dict[str, Any]] = MongoClient(secantus_uri, tz_aware=True)
    db = client[mongo_database]
    now = clock()
    for n, (title, summary, source) in enumerate(
        [("Straße", "", None), ("", "ǅemal", "crm"), ("Strand", "", None)]
    ):
        db.conversations.insert_one(
            {
                "_id": f"{n:032x}",
                "key": {"platform": "api", "workspace": "", "channel": f"c{n}", "thread": ""},
                "key_id": f"api\x1f\x1fc{n}\x1f",
                "agent_id": "chef",
                "created_at": now,
                "updated_at": now,
                "closed_at": None,
                "title": title,
                "data": "{}",
                "source": source,
                "tags": [],
                "summary": summary,
                "summary_seq": 0,
                "message_count": 0,
                "last_message_at": None,
                "goal": None,
                "goal_pending": False,
                "goal_check_count": 0,
                "search": "\x1f".join((title, summary, source or "")).lower(),
            }
        )
    store = MongoStore(uri=secantus_uri, database=mongo_database, clock=clock)
    await store.open()
    try:
        assert db.parley_schema.find_one({"_id": "schema"}) == {
            "_id": "schema",
            "version": mongo_schema.LATEST,
        }
        assert db.conversations.count_documents({"search": {"$exists": True}}) == 0
        # Version 2 kept the grams in the conversations; version 3 moved them apart.
        assert "search_grams" not in db.conversations.index_information()
        assert "search_grams" in db.conversation_search.index_information()
        assert db.conversations.count_documents({"search_grams": {"$exists": True}}) == 0
        assert db.conversations.count_documents({"search_text": {"$exists": True}}) == 0
        assert db.conversation_search.count_documents({}) == 3
        for needle, wanted in (("STRASSE", [0]), ("ǆ", [1]), ("CRM", [1]), ("str", [0, 2])):
            page = await store.list_conversations(ConversationQuery(text=needle))
            assert sorted(int(item.id, 16) for item in page.items) == wanted, needle
    finally:
        await store.close()
        client.close()


async def test_mongo_database_from_a_newer_release_is_refused(
    secantus_uri: str, mongo_database: str
) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(secantus_uri)
    try:
        client[mongo_database].parley_schema.insert_one(
            {"_id": "schema", "version": mongo_schema.LATEST + 1}
        )
    finally:
        client.close()
    store = MongoStore(uri=secantus_uri, database=mongo_database)
    with pytest.raises(StoreError, match="newer than this release"):
        await store.open()


# files from before numbered migrations, built by hand ------------------------------------


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
        db.execute("PRAGMA user_version = 0")  # as files from before numbered migrations
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
