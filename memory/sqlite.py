"""The embedded store: one SQLite file in WAL mode, shared by coroutines and processes.

Times are INTEGER milliseconds since the Unix epoch (UTC); structured values are JSON text.
One aiosqlite connection serves every coroutine of a process, so an asyncio lock keeps one
coroutine's statements from landing inside another's transaction. Multi-statement writes run
in ``BEGIN IMMEDIATE`` transactions, which take SQLite's write lock up front: a second process
on the same file then waits (``busy_timeout``) instead of failing half-way through.

Text search reads an index, never every conversation. SQLite cannot fold case beyond ASCII, so
the store keeps each conversation's title, summary and source ``str.casefold``-ed in
``conversation_search_folded``, indexed by ``conversation_search_text``, an FTS5 table with the
trigram tokenizer (case-sensitive: the text is folded already); ``conversation_search`` maps
conversation ids to the rowids both use. A needle of three or more characters is one FTS5
phrase of consecutive trigrams, which holds exactly where the needle is a substring;
``_text_matches`` lists the few characters for which that is not so, and checks those cases
with ``instr``. Shorter needles have no trigram to look up: they scan the folded text with
``instr``, in C, with no Python call per row.

Triggers on ``conversations`` (plain SQL, so every writer fires them, an older release's
processes included) queue each new conversation, and each change of title, summary or source,
in ``conversation_search_pending``, and drop a deleted conversation's text. The store folds the
queue in the same transaction as its own writes and at ``open`` (which also indexes a file from
before text search); a search folds whatever is still queued itself, so it never misses a row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import aiosqlite
from pydantic import JsonValue

from bot.errors import Conflict, NotFound, StoreError, StoreUnavailable
from memory.base import (
    JOURNAL_RANK,
    JOURNAL_UNFINISHED,
    UNSET,
    ApiKeyRecord,
    ChannelBinding,
    Clock,
    Conversation,
    ConversationOrder,
    ConversationPage,
    ConversationQuery,
    GoalCheck,
    GoalState,
    JournalEntry,
    JournalState,
    Message,
    NewApiKey,
    NewGoalCheck,
    NewJournalEntry,
    NewMessage,
    Platform,
    PlatformKey,
    StoredAgent,
    is_valid_id,
    is_valid_journal_id,
    journal_changes,
    truncate_ms,
    utc_now,
)

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_MIN_INT64 = -(2**63)
_MAX_INT64 = 2**63 - 1
_PRUNE_EVERY = 1000
"""Delete expired events and claims once per this many ``mark_event_processed`` calls."""

Params = Sequence[object] | Mapping[str, object]

_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS conversations (
        id TEXT PRIMARY KEY,
        key_id TEXT UNIQUE,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        closed_at INTEGER,
        title TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL DEFAULT '{}',
        source TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        summary TEXT NOT NULL DEFAULT '',
        summary_seq INTEGER NOT NULL DEFAULT 0,
        message_count INTEGER NOT NULL DEFAULT 0,
        last_message_at INTEGER,
        goal TEXT,
        goal_pending INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id),
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        author_id TEXT NOT NULL,
        author_name TEXT NOT NULL,
        text TEXT NOT NULL,
        data TEXT,
        platform_message_id TEXT,
        created_at INTEGER NOT NULL,
        token_count INTEGER NOT NULL,
        error TEXT,
        UNIQUE (conversation_id, seq)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS conversation_tags (
        conversation_id TEXT NOT NULL REFERENCES conversations (id),
        tag TEXT NOT NULL,
        PRIMARY KEY (conversation_id, tag)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS processed_events (
        event_id TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS goal_checks (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id),
        agent_id TEXT NOT NULL,
        checked_at INTEGER NOT NULL,
        reached INTEGER NOT NULL,
        summary TEXT NOT NULL,
        missing TEXT NOT NULL,
        covered_seq INTEGER NOT NULL,
        error TEXT,
        posted_at INTEGER
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS channel_bindings (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (platform, workspace, channel)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS claims (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS agents (
        id TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        agents TEXT NOT NULL,
        platforms TEXT NOT NULL DEFAULT '[]',
        workspaces TEXT NOT NULL DEFAULT '[]',
        key_hash TEXT NOT NULL UNIQUE,
        hint TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
    )
    """,
    # Listing pages read an index in the page's order: (filter, sort time, id) for every
    # filter and order the console offers. They replace the earlier two-column indexes.
    "DROP INDEX IF EXISTS conversations_agent",
    "DROP INDEX IF EXISTS conversations_platform",
    "DROP INDEX IF EXISTS conversations_created",
    "DROP INDEX IF EXISTS conversations_updated",
    """
    CREATE INDEX IF NOT EXISTS conversations_agent_updated
    ON conversations (agent_id, updated_at, id)
    """,
    """
    CREATE INDEX IF NOT EXISTS conversations_agent_created
    ON conversations (agent_id, created_at, id)
    """,
    """
    CREATE INDEX IF NOT EXISTS conversations_platform_updated
    ON conversations (platform, updated_at, id)
    """,
    """
    CREATE INDEX IF NOT EXISTS conversations_platform_created
    ON conversations (platform, created_at, id)
    """,
    "DROP INDEX IF EXISTS conversations_workspace",
    """
    CREATE INDEX IF NOT EXISTS conversations_workspace_updated
    ON conversations (workspace, updated_at, id)
    """,
    """
    CREATE INDEX IF NOT EXISTS conversations_workspace_created
    ON conversations (workspace, created_at, id)
    """,
    "CREATE INDEX IF NOT EXISTS conversations_created_id ON conversations (created_at, id)",
    "CREATE INDEX IF NOT EXISTS conversations_updated_id ON conversations (updated_at, id)",
    """
    CREATE INDEX IF NOT EXISTS conversations_goal_due
    ON conversations (agent_id, goal_pending, last_message_at)
    """,
    "CREATE INDEX IF NOT EXISTS conversation_tags_tag ON conversation_tags (tag)",
    "CREATE INDEX IF NOT EXISTS processed_events_expiry ON processed_events (expires_at)",
    """
    CREATE INDEX IF NOT EXISTS goal_checks_conversation
    ON goal_checks (conversation_id, checked_at)
    """,
    "CREATE INDEX IF NOT EXISTS claims_expiry ON claims (expires_at)",
    "CREATE INDEX IF NOT EXISTS goal_checks_unposted ON goal_checks (agent_id, posted_at)",
    "CREATE INDEX IF NOT EXISTS goal_checks_agent ON goal_checks (agent_id, checked_at)",
    "CREATE INDEX IF NOT EXISTS channel_bindings_agent ON channel_bindings (agent_id)",
    """
    CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name
    ON api_keys (name) WHERE revoked_at IS NULL
    """,
    "CREATE INDEX IF NOT EXISTS api_keys_created ON api_keys (created_at, id)",
    # The turn journal: ``place`` is the PlatformKey's canonical string; ``pending`` is 1 while
    # the state is received or answered, and the partial indexes hold only such entries (or,
    # for pruning, only the others). ``journal_unfinished`` holds ``pending`` too, so that it
    # covers the queries that name it (the planner does not count a partial index's WHERE).
    """
    CREATE TABLE IF NOT EXISTS journal (
        id TEXT PRIMARY KEY,
        place TEXT NOT NULL,
        position TEXT NOT NULL,
        message TEXT NOT NULL,
        state TEXT NOT NULL,
        pending INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        conversation_id TEXT,
        user_message_id TEXT,
        reply_message_id TEXT,
        shown_ref TEXT,
        error TEXT
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS journal_next
    ON journal (place, position, created_at, id) WHERE pending = 1
    """,
    """
    CREATE INDEX IF NOT EXISTS journal_unfinished
    ON journal (place, created_at, id, updated_at, pending) WHERE pending = 1
    """,
    "CREATE INDEX IF NOT EXISTS journal_finished ON journal (updated_at) WHERE pending = 0",
    # Text search: see the module docstring. INTEGER PRIMARY KEYs keep the rowids FTS5 refers
    # to stable through VACUUM. ``has_nul`` marks text the tokenizer reads only up to a NUL.
    """
    CREATE TABLE IF NOT EXISTS conversation_search (
        search_id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL UNIQUE,
        has_nul INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS conversation_search_nul
    ON conversation_search (search_id) WHERE has_nul
    """,
    """
    CREATE TABLE IF NOT EXISTS conversation_search_folded (
        search_id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        summary TEXT NOT NULL,
        source TEXT
    )
    """,
    """
    CREATE VIRTUAL TABLE IF NOT EXISTS conversation_search_text USING fts5 (
        title, summary, source,
        content = 'conversation_search_folded', content_rowid = 'search_id',
        tokenize = 'trigram case_sensitive 1', columnsize = 0
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS conversation_search_pending (
        conversation_id TEXT PRIMARY KEY
    ) WITHOUT ROWID
    """,
    """
    CREATE TRIGGER IF NOT EXISTS conversation_search_removed
    AFTER DELETE ON conversation_search BEGIN
        DELETE FROM conversation_search_folded WHERE search_id = old.search_id;
    END
    """,
    # FTS5 keeps no copy of external content: it is told the old text to forget. The store
    # does so itself when it changes text (FTS5 indexes many times slower from a trigger);
    # this trigger covers deletes, from the conversation down, whoever makes them.
    """
    CREATE TRIGGER IF NOT EXISTS conversation_search_folded_removed
    AFTER DELETE ON conversation_search_folded BEGIN
        INSERT INTO conversation_search_text
            (conversation_search_text, rowid, title, summary, source)
        VALUES ('delete', old.search_id, old.title, old.summary, old.source);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS conversations_search_added
    AFTER INSERT ON conversations BEGIN
        INSERT INTO conversation_search_pending (conversation_id) VALUES (new.id)
        ON CONFLICT (conversation_id) DO NOTHING;
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS conversations_search_changed
    AFTER UPDATE OF title, summary, source ON conversations
    WHEN old.title IS NOT new.title OR old.summary IS NOT new.summary
        OR old.source IS NOT new.source
    BEGIN
        INSERT INTO conversation_search_pending (conversation_id) VALUES (new.id)
        ON CONFLICT (conversation_id) DO NOTHING;
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS conversations_search_removed
    AFTER DELETE ON conversations BEGIN
        DELETE FROM conversation_search WHERE conversation_id = old.id;
        DELETE FROM conversation_search_pending WHERE conversation_id = old.id;
    END
    """,
)

_INDEX_BATCH = 2000
"""Queued conversations folded per transaction at ``open``: short holds of the write lock."""

_QUEUED = """
SELECT
    p.conversation_id AS id, c.title, c.summary, c.source,
    s.search_id, s.has_nul, f.title AS old_title, f.summary AS old_summary, f.source AS old_source,
    (SELECT max(search_id) FROM conversation_search) AS last_search_id
FROM conversation_search_pending AS p
LEFT JOIN conversations AS c ON c.id = p.conversation_id
LEFT JOIN conversation_search AS s ON s.conversation_id = p.conversation_id
LEFT JOIN conversation_search_folded AS f ON f.search_id = s.search_id
"""

_KEEP_FOLDED = """
INSERT INTO conversation_search_folded (search_id, title, summary, source) VALUES (?, ?, ?, ?)
ON CONFLICT (search_id) DO UPDATE SET
    title = excluded.title, summary = excluded.summary, source = excluded.source
"""

_FORGET_TEXT = """
INSERT INTO conversation_search_text (conversation_search_text, rowid, title, summary, source)
VALUES ('delete', ?, ?, ?, ?)
"""

_LEARN_TEXT = """
INSERT INTO conversation_search_text (rowid, title, summary, source) VALUES (?, ?, ?, ?)
"""

_BIND = """
INSERT INTO channel_bindings (platform, workspace, channel, agent_id, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (platform, workspace, channel)
DO UPDATE SET agent_id = excluded.agent_id, updated_at = excluded.updated_at
"""

_INSERT_CONVERSATION = """
INSERT INTO conversations
    (id, key_id, platform, workspace, channel, thread, agent_id, created_at, updated_at, title)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key_id) DO NOTHING
"""

_UPDATE_CONVERSATION = """
UPDATE conversations SET
    updated_at = :updated_at,
    data = CASE WHEN :set_data THEN :data ELSE data END,
    source = CASE WHEN :set_source THEN :source ELSE source END,
    tags = CASE WHEN :set_tags THEN :tags ELSE tags END,
    agent_id = CASE WHEN :set_agent_id THEN :agent_id ELSE agent_id END,
    title = CASE WHEN :set_title THEN :title ELSE title END
WHERE id = :id
RETURNING *
"""

_COUNT_MESSAGE = """
UPDATE conversations
SET message_count = message_count + 1, updated_at = ?, last_message_at = ?, goal_pending = 1
WHERE id = ?
RETURNING message_count
"""

_INSERT_MESSAGE = """
INSERT INTO messages (
    id, conversation_id, seq, role, author_id, author_name, text, data,
    platform_message_id, created_at, token_count, error
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_MESSAGES_WINDOW = """
SELECT * FROM messages
WHERE conversation_id = ? AND seq > ? AND seq < ?
ORDER BY seq
LIMIT ?
"""

_NEWEST_MESSAGES_WINDOW = """
SELECT * FROM messages
WHERE conversation_id = ? AND seq > ? AND seq < ?
ORDER BY seq DESC
LIMIT ?
"""

_MARK_EVENT = """
INSERT INTO processed_events (event_id, expires_at) VALUES (?, ?)
ON CONFLICT (event_id) DO UPDATE SET expires_at = excluded.expires_at
WHERE processed_events.expires_at <= ?
"""

_INSERT_GOAL_CHECK = """
INSERT INTO goal_checks (
    id, conversation_id, agent_id, checked_at, reached, summary, missing, covered_seq, error
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_DUE_FOR_GOAL_CHECK = """
SELECT * FROM conversations
WHERE agent_id = ? AND goal_pending = 1 AND closed_at IS NULL
ORDER BY last_message_at, id
LIMIT ?
"""

_INSERT_AGENT = """
INSERT INTO agents (id, definition, created_at, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
"""

_INSERT_API_KEY = """
INSERT INTO api_keys (id, name, scope, agents, platforms, workspaces, key_hash, hint, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""

_API_KEY_COLUMNS_ADDED = (
    "ALTER TABLE api_keys ADD COLUMN platforms TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE api_keys ADD COLUMN workspaces TEXT NOT NULL DEFAULT '[]'",
)
"""A file from before keys could be limited to places gains the columns (no limit)."""

_CLAIM = """
INSERT INTO claims (key, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE claims.owner = excluded.owner OR claims.expires_at <= ?
RETURNING 1
"""

_INSERT_JOURNAL = """
INSERT INTO journal (id, place, position, message, state, pending, created_at, updated_at)
VALUES (?, ?, ?, ?, 'received', 1, ?, ?)
ON CONFLICT (id) DO NOTHING
RETURNING *
"""

_JOURNAL_NEXT = """
SELECT * FROM journal
WHERE place = ? AND pending = 1
ORDER BY position, created_at, id
LIMIT 1
"""

_JOURNAL_TAKE = f"""
UPDATE journal SET attempts = attempts + 1, updated_at = ?
WHERE id = ({_JOURNAL_NEXT.replace("SELECT *", "SELECT id", 1)})
RETURNING *
"""  # noqa: S608

_JOURNAL_MOVES = (
    ":set_state AND pending = 1 AND :rank > CASE state WHEN 'received' THEN 0 ELSE 1 END"
)
"""The requested state applies (see ``memory.base.journal_state_after``); SET expressions all
read the row as it was, so ``state`` and ``pending`` move together."""

_UPDATE_JOURNAL = f"""
UPDATE journal SET
    state = CASE WHEN {_JOURNAL_MOVES} THEN :state ELSE state END,
    pending = CASE WHEN {_JOURNAL_MOVES} THEN :pending ELSE pending END,
    conversation_id = CASE WHEN :set_conversation_id THEN :conversation_id
        ELSE conversation_id END,
    user_message_id = CASE WHEN :set_user_message_id THEN :user_message_id
        ELSE user_message_id END,
    reply_message_id = CASE WHEN :set_reply_message_id THEN :reply_message_id
        ELSE reply_message_id END,
    shown_ref = CASE WHEN :set_shown_ref THEN :shown_ref ELSE shown_ref END,
    error = CASE WHEN :set_error THEN :error ELSE error END,
    attempts = attempts + :add_attempt,
    updated_at = :updated_at
WHERE id = :id
RETURNING *
"""  # noqa: S608

_JOURNAL_PENDING = """
SELECT place FROM (
    SELECT place, created_at, id, updated_at,
        row_number() OVER (PARTITION BY place ORDER BY created_at, id) AS n
    FROM journal
    WHERE pending = 1
)
WHERE n = 1 AND updated_at < ?
ORDER BY created_at, id
LIMIT ?
"""
"""Each place's oldest unfinished entry (read in order from ``journal_unfinished``), oldest
first: only unfinished entries are read, and only the places are sorted."""

_JOURNAL_FIELDS = ("conversation_id", "user_message_id", "reply_message_id", "shown_ref", "error")

_ORDER_BY: dict[ConversationOrder, str] = {
    "updated_desc": "updated_at DESC, id DESC",
    "updated_asc": "updated_at ASC, id ASC",
    "created_desc": "created_at DESC, id DESC",
    "created_asc": "created_at ASC, id ASC",
}

_TRIGRAM = 3
"""The FTS5 trigram tokenizer makes a token of every three characters: shorter needles have none."""

_UNTOKENIZED = frozenset("\ufffd\ufffe\uffff")
"""Characters the tokenizer reads alike (all as U+FFFD): a phrase holding one may match others."""

_NOT_QUEUED = """
        s.conversation_id NOT IN (SELECT conversation_id FROM conversation_search_pending)"""

_FOLDED_MATCH = """
        (instr(f.title, ?) > 0 OR instr(f.summary, ?) > 0 OR instr(f.source, ?) > 0)"""

_PHRASE_MATCHES = """
    SELECT s.conversation_id
    FROM conversation_search_text (?) AS t
    CROSS JOIN conversation_search AS s ON s.search_id = t.rowid
    WHERE NOT s.has_nul AND"""

_CONFIRMED_PHRASE_MATCHES = """
    SELECT s.conversation_id
    FROM conversation_search_text (?) AS t
    CROSS JOIN conversation_search AS s ON s.search_id = t.rowid
    CROSS JOIN conversation_search_folded AS f ON f.search_id = s.search_id
    WHERE NOT s.has_nul AND"""

_NUL_MATCHES = """
    SELECT s.conversation_id
    FROM conversation_search AS s
    CROSS JOIN conversation_search_folded AS f ON f.search_id = s.search_id
    WHERE s.has_nul AND"""

_SCANNED_MATCHES = """
    SELECT s.conversation_id
    FROM conversation_search_folded AS f
    CROSS JOIN conversation_search AS s ON s.search_id = f.search_id
    WHERE"""

_MATCHES_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS search_matches (matched_id TEXT PRIMARY KEY) WITHOUT ROWID
"""

_QUEUED_MATCHES = """
    SELECT c.id
    FROM conversation_search_pending AS p CROSS JOIN conversations AS c ON c.id = p.conversation_id
    WHERE instr(parley_fold(c.title), ?) > 0
        OR instr(parley_fold(c.summary), ?) > 0
        OR instr(parley_fold(c.source), ?) > 0"""

_FEW_MATCHES = 2000
"""Up to this many text matches, a search looks each one up; beyond, it reads the indexes.

A lookup per match is cheapest while they are few. Many matches are cheaper probed: the count
from the other filters' index (or the id index), the page by walking the order's index until
``offset + limit`` matches, which come soon when matches are many (at worst one pass over the
index, with no Python).
"""


class SqliteStore:
    """A :class:`~memory.base.ConversationStore` kept in one SQLite file."""

    def __init__(self, *, path: Path, clock: Clock = utc_now) -> None:
        self._path = path
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._events_marked = 0

    def __repr__(self) -> str:
        return f"SqliteStore(path={str(self._path)!r})"

    @property
    def description(self) -> str:
        return f"SQLite ({self._path})"

    async def open(self) -> None:
        async with self._lock:
            if self._db is not None:
                return
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                db = await aiosqlite.connect(self._path, isolation_level=None)
            except (OSError, sqlite3.Error) as error:
                raise StoreUnavailable(f"cannot open {self.description}: {error}") from error
            try:
                db.row_factory = sqlite3.Row
                await db.create_function("parley_fold", 1, _fold, deterministic=True)
                await _change(db, _MATCHES_TABLE)
                for pragma in _PRAGMAS:
                    await _fetch(db, pragma)
                async with _transaction(db):
                    searchable = await _fetch(
                        db,
                        "SELECT 1 FROM sqlite_master"
                        " WHERE type = 'table' AND name = 'conversation_search'",
                    )
                    for statement in _SCHEMA:
                        await _change(db, statement)
                    await _add_api_key_columns(db)
                    if not searchable:
                        # A file from before text search: queue every conversation for it.
                        await _change(
                            db,
                            "INSERT INTO conversation_search_pending (conversation_id)"
                            " SELECT id FROM conversations",
                        )
                    await _prune(db, self._now_ms())
                # Index what is queued (all of an upgraded file, or what an older release's
                # process wrote), a batch per transaction so other processes are not held up.
                indexed = _INDEX_BATCH
                while indexed == _INDEX_BATCH:
                    async with _transaction(db):
                        indexed = await _index_queued(db, limit=_INDEX_BATCH)
            except BaseException:
                await db.close()
                raise
            self._db = db

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await db.close()

    async def ping(self) -> bool:
        try:
            async with self._connection() as db:
                await _fetch(db, "SELECT 1")
        except StoreError:
            return False
        return True

    # conversations

    async def get_or_create_conversation(
        self, *, key: PlatformKey, agent_id: str, title: str = ""
    ) -> tuple[Conversation, bool]:
        existing = await self.find_conversation(key=key)
        if existing is not None:
            return existing, False
        now = self._now_ms()
        row = (
            uuid.uuid4().hex,
            key.canonical,
            key.platform,
            key.workspace,
            key.channel,
            key.thread,
            agent_id,
            now,
            now,
            title,
        )
        async with self._write() as db:
            created = await _change(db, _INSERT_CONVERSATION, row) == 1
            rows = await _fetch(
                db, "SELECT * FROM conversations WHERE key_id = ?", (key.canonical,)
            )
            if created:
                await _index_queued(db, conversation_id=rows[0]["id"])
        return _conversation(rows[0]), created

    async def find_conversation(self, *, key: PlatformKey) -> Conversation | None:
        async with self._connection() as db:
            rows = await _fetch(
                db, "SELECT * FROM conversations WHERE key_id = ?", (key.canonical,)
            )
        return _conversation(rows[0]) if rows else None

    async def get_conversation(self, *, conversation_id: str) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        async with self._connection() as db:
            rows = await _fetch(db, "SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return _conversation(rows[0]) if rows else None

    async def close_conversation(self, *, conversation_id: str) -> bool:
        """Set ``key_id`` to NULL, which frees the key: the unique index ignores NULLs."""
        if not is_valid_id(conversation_id):
            return False
        now = self._now_ms()
        async with self._connection() as db:
            changed = await _change(
                db,
                "UPDATE conversations SET key_id = NULL, closed_at = ?, updated_at = ?"
                " WHERE id = ? AND closed_at IS NULL",
                (now, now, conversation_id),
            )
        return changed == 1

    async def update_conversation(
        self,
        *,
        conversation_id: str,
        data: dict[str, JsonValue] = UNSET,
        source: str | None = UNSET,
        tags: Sequence[str] = UNSET,
        agent_id: str = UNSET,
        title: str = UNSET,
    ) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        new_tags = None if tags is UNSET else tuple(tags)
        params: dict[str, object] = {
            "id": conversation_id,
            "updated_at": self._now_ms(),
            "set_data": data is not UNSET,
            "data": None if data is UNSET else _dumps(data),
            "set_source": source is not UNSET,
            "source": None if source is UNSET else source,
            "set_tags": new_tags is not None,
            "tags": None if new_tags is None else _dumps(list(new_tags)),
            "set_agent_id": agent_id is not UNSET,
            "agent_id": None if agent_id is UNSET else agent_id,
            "set_title": title is not UNSET,
            "title": None if title is UNSET else title,
        }
        async with self._write() as db:
            rows = await _fetch(db, _UPDATE_CONVERSATION, params)
            if rows:
                await _index_queued(db, conversation_id=conversation_id)
            if rows and new_tags is not None:
                await _change(
                    db,
                    "DELETE FROM conversation_tags WHERE conversation_id = ?",
                    (conversation_id,),
                )
                await _change_many(
                    db,
                    "INSERT OR IGNORE INTO conversation_tags (conversation_id, tag) VALUES (?, ?)",
                    [(conversation_id, tag) for tag in new_tags],
                )
        return _conversation(rows[0]) if rows else None

    async def set_summary(self, *, conversation_id: str, summary: str, summary_seq: int) -> bool:
        if not is_valid_id(conversation_id):
            return False
        async with self._write() as db:
            changed = await _change(
                db,
                "UPDATE conversations SET summary = ?, summary_seq = ?"
                " WHERE id = ? AND summary_seq <= ?",
                (summary, summary_seq, conversation_id, summary_seq),
            )
            if changed:
                await _index_queued(db, conversation_id=conversation_id)
        return changed == 1

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        filters: list[str] = []
        params: list[object] = []
        for column, value, limits in (
            ("agent_id", query.agent_id, query.agent_ids),
            ("platform", query.platform, query.platforms),
            ("workspace", query.workspace, query.workspaces),
        ):
            if value is not None:
                filters.append(f"{column} = ?")
                params.append(value)
            if limits:
                filters.append(f"{column} IN ({', '.join('?' * len(limits))})")
                params.extend(limits)
        if query.tag is not None:
            filters.append("id IN (SELECT conversation_id FROM conversation_tags WHERE tag = ?)")
            params.append(query.tag)
        if not query.include_closed:
            filters.append("closed_at IS NULL")
        # Only the fixed fragments above reach the SQL text; every value is a bound parameter.
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        order = f"ORDER BY {_ORDER_BY[query.order]} LIMIT ? OFFSET ?"
        count_sql = f"SELECT count(*) FROM conversations {where}"  # noqa: S608
        page_sql = f"SELECT * FROM conversations {where} {order}"  # noqa: S608
        async with self._connection() as db, _transaction(db, "BEGIN"):
            if query.text:
                count_sql, page_sql = await _match_text(db, query.text, filters, order)
            total: int = (await _fetch(db, count_sql, params))[0][0]
            rows = await _fetch(db, page_sql, [*params, query.limit, query.offset])
            if query.text:
                await _change(db, "DELETE FROM temp.search_matches")
        return ConversationPage(items=tuple(_conversation(row) for row in rows), total=total)

    async def delete_conversation(self, *, conversation_id: str) -> bool:
        if not is_valid_id(conversation_id):
            return False
        async with self._write() as db:
            for table in ("conversation_tags", "messages", "goal_checks"):
                await _change(
                    db,
                    f"DELETE FROM {table} WHERE conversation_id = ?",  # noqa: S608
                    (conversation_id,),
                )
            deleted = await _change(
                db, "DELETE FROM conversations WHERE id = ?", (conversation_id,)
            )
        return deleted == 1

    # messages

    async def append_message(self, *, conversation_id: str, message: NewMessage) -> Message:
        if not is_valid_id(conversation_id):
            raise NotFound(f"conversation {conversation_id!r} not found")
        now = self._now()
        now_ms = _to_ms(now)
        message_id = uuid.uuid4().hex
        async with self._write() as db:
            counted = await _fetch(db, _COUNT_MESSAGE, (now_ms, now_ms, conversation_id))
            if not counted:
                raise NotFound(f"conversation {conversation_id} not found")
            seq: int = counted[0][0]
            await _change(
                db,
                _INSERT_MESSAGE,
                (
                    message_id,
                    conversation_id,
                    seq,
                    message.role,
                    message.author_id,
                    message.author_name,
                    message.text,
                    None if message.data is None else _dumps(message.data),
                    message.platform_message_id,
                    now_ms,
                    message.token_count,
                    message.error,
                ),
            )
        return Message(
            id=message_id,
            conversation_id=conversation_id,
            seq=seq,
            created_at=now,
            **message.model_dump(),
        )

    async def list_messages(
        self,
        *,
        conversation_id: str,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Message]:
        if limit < 1 or not is_valid_id(conversation_id):
            return []
        window = (
            conversation_id,
            _MIN_INT64 if after_seq is None else after_seq,
            _MAX_INT64 if before_seq is None else before_seq,
            limit,
        )
        sql = _NEWEST_MESSAGES_WINDOW if newest_first else _MESSAGES_WINDOW
        async with self._connection() as db:
            rows = await _fetch(db, sql, window)
        return [_message(row) for row in rows]

    # processed platform events

    async def mark_event_processed(self, *, event_id: str, ttl_seconds: int = 86_400) -> bool:
        now = self._now_ms()
        async with self._connection() as db:
            fresh = await _change(db, _MARK_EVENT, (event_id, now + ttl_seconds * 1000, now)) == 1
            self._events_marked += 1
            if self._events_marked % _PRUNE_EVERY == 0:
                try:
                    await _prune(db, now)
                except StoreError:
                    log.warning("could not delete expired events and claims", exc_info=True)
        return fresh

    # goal checks

    async def add_goal_check(self, check: NewGoalCheck) -> GoalCheck:
        """Store the check; a successful one also becomes the conversation's goal state.

        The conversation stays pending while it has messages beyond what the check covered.
        """
        if not is_valid_id(check.conversation_id):
            raise NotFound(f"conversation {check.conversation_id!r} not found")
        record = GoalCheck(
            id=uuid.uuid4().hex, checked_at=self._now(), **check.model_dump(mode="python")
        )
        async with self._write() as db:
            found = await _fetch(
                db, "SELECT 1 FROM conversations WHERE id = ?", (record.conversation_id,)
            )
            if not found:
                raise NotFound(f"conversation {record.conversation_id} not found")
            await _change(
                db,
                _INSERT_GOAL_CHECK,
                (
                    record.id,
                    record.conversation_id,
                    record.agent_id,
                    _to_ms(record.checked_at),
                    record.reached,
                    record.summary,
                    _dumps(list(record.missing)),
                    record.covered_seq,
                    record.error,
                ),
            )
            if record.error is None:
                await _change(
                    db,
                    "UPDATE conversations SET goal = ?, goal_pending = message_count > ?"
                    " WHERE id = ?",
                    (_goal_json(record), record.covered_seq, record.conversation_id),
                )
        return record

    async def list_goal_checks(self, *, conversation_id: str, limit: int = 50) -> list[GoalCheck]:
        """Newest first; checks made in the same millisecond come newest-inserted first."""
        if limit < 1 or not is_valid_id(conversation_id):
            return []
        async with self._connection() as db:
            rows = await _fetch(
                db,
                "SELECT * FROM goal_checks WHERE conversation_id = ?"
                " ORDER BY checked_at DESC, rowid DESC LIMIT ?",
                (conversation_id, limit),
            )
        return [_goal_check(row) for row in rows]

    async def mark_goal_check_posted(self, *, check_id: str) -> bool:
        if not is_valid_id(check_id):
            return False
        async with self._connection() as db:
            changed = await _change(
                db, "UPDATE goal_checks SET posted_at = ? WHERE id = ?", (self._now_ms(), check_id)
            )
        return changed == 1

    async def goal_checks_to_post(self, *, agent_id: str, limit: int = 100) -> list[GoalCheck]:
        if limit < 1:
            return []
        async with self._connection() as db:
            rows = await _fetch(
                db,
                "SELECT * FROM goal_checks"
                " WHERE agent_id = ? AND posted_at IS NULL AND error IS NULL"
                " ORDER BY checked_at, rowid LIMIT ?",
                (agent_id, limit),
            )
        return [_goal_check(row) for row in rows]

    async def conversations_due_for_goal_check(
        self, *, agent_id: str, limit: int = 100
    ) -> list[Conversation]:
        if limit < 1:
            return []
        async with self._connection() as db:
            rows = await _fetch(db, _DUE_FOR_GOAL_CHECK, (agent_id, limit))
        return [_conversation(row) for row in rows]

    async def list_agent_goal_checks(
        self,
        *,
        agent_id: str,
        since: datetime,
        limit: int = 5000,
        platforms: Sequence[Platform] = (),
        workspaces: Sequence[str] = (),
    ) -> list[GoalCheck]:
        """Oldest first; checks made in the same millisecond come oldest-inserted first.

        With place limits, each check in the window finds its conversation by primary key.
        """
        if limit < 1:
            return []
        sql = "SELECT g.* FROM goal_checks AS g"
        filters = ["g.agent_id = ?", "g.checked_at >= ?"]
        params: list[object] = [agent_id, _ceil_ms(since)]
        if platforms or workspaces:
            sql += " CROSS JOIN conversations AS c ON c.id = g.conversation_id"
            for column, limits in (("c.platform", platforms), ("c.workspace", workspaces)):
                if limits:
                    filters.append(f"{column} IN ({', '.join('?' * len(limits))})")
                    params.extend(limits)
        # Only fixed fragments reach the SQL text; every value is a bound parameter.
        where = " AND ".join(filters)
        async with self._connection() as db:
            rows = await _fetch(
                db, f"{sql} WHERE {where} ORDER BY g.checked_at, g.rowid LIMIT ?", [*params, limit]
            )
        return [_goal_check(row) for row in rows]

    # stored agents

    async def create_agent(self, *, agent_id: str, definition: dict[str, JsonValue]) -> StoredAgent:
        now = self._now()
        row = (agent_id, _dumps(definition), _to_ms(now), _to_ms(now))
        async with self._connection() as db:
            created = await _change(db, _INSERT_AGENT, row) == 1
        if not created:
            raise Conflict(f"agent {agent_id!r} already exists")
        return StoredAgent(id=agent_id, definition=definition, created_at=now, updated_at=now)

    async def replace_agent(
        self, *, agent_id: str, definition: dict[str, JsonValue]
    ) -> StoredAgent | None:
        async with self._connection() as db:
            rows = await _fetch(
                db,
                "UPDATE agents SET definition = ?, updated_at = ? WHERE id = ? RETURNING *",
                (_dumps(definition), self._now_ms(), agent_id),
            )
        return _agent(rows[0]) if rows else None

    async def get_agent(self, *, agent_id: str) -> StoredAgent | None:
        async with self._connection() as db:
            rows = await _fetch(db, "SELECT * FROM agents WHERE id = ?", (agent_id,))
        return _agent(rows[0]) if rows else None

    async def list_agents(self, *, limit: int = 1000) -> list[StoredAgent]:
        if limit < 1:
            return []
        async with self._connection() as db:
            rows = await _fetch(db, "SELECT * FROM agents ORDER BY id LIMIT ?", (limit,))
        return [_agent(row) for row in rows]

    async def delete_agent(self, *, agent_id: str) -> bool:
        async with self._connection() as db:
            deleted = await _change(db, "DELETE FROM agents WHERE id = ?", (agent_id,))
        return deleted == 1

    # API keys

    async def add_api_key(self, key: NewApiKey) -> ApiKeyRecord:
        """Insert unless the hash or an unrevoked name is taken (the unique indexes decide)."""
        record = ApiKeyRecord(id=uuid.uuid4().hex, created_at=self._now(), **key.model_dump())
        row = (
            record.id,
            record.name,
            record.scope,
            _dumps(list(record.agents)),
            _dumps(list(record.platforms)),
            _dumps(list(record.workspaces)),
            record.key_hash,
            record.hint,
            _to_ms(record.created_at),
        )
        async with self._connection() as db:
            inserted = await _change(db, _INSERT_API_KEY, row) == 1
        if not inserted:
            raise Conflict(f"an API key named {key.name!r} (or with that hash) already exists")
        return record

    async def find_api_key(self, *, key_hash: str) -> ApiKeyRecord | None:
        async with self._connection() as db:
            rows = await _fetch(db, "SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return _api_key(rows[0]) if rows else None

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        async with self._connection() as db:
            rows = await _fetch(db, "SELECT * FROM api_keys ORDER BY created_at, id")
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, *, key_id: str) -> bool:
        if not is_valid_id(key_id):
            return False
        async with self._connection() as db:
            changed = await _change(
                db,
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._now_ms(), key_id),
            )
        return changed == 1

    async def touch_api_key(self, *, key_id: str) -> None:
        if not is_valid_id(key_id):
            return
        async with self._connection() as db:
            await _change(
                db, "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (self._now_ms(), key_id)
            )

    # channel bindings

    async def bind_channel(
        self, *, platform: Platform, workspace: str, channel: str, agent_id: str
    ) -> None:
        async with self._connection() as db:
            await _change(db, _BIND, (platform, workspace, channel, agent_id, self._now_ms()))

    async def channel_agent(
        self, *, platform: Platform, workspace: str, channel: str
    ) -> str | None:
        async with self._connection() as db:
            cursor = await db.execute(
                "SELECT agent_id FROM channel_bindings"
                " WHERE platform = ? AND workspace = ? AND channel = ?",
                (platform, workspace, channel),
            )
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def list_channel_bindings(
        self, *, agent_id: str | None = None, limit: int = 1000
    ) -> list[ChannelBinding]:
        if limit < 1:
            return []
        columns = "SELECT platform, workspace, channel, agent_id FROM channel_bindings"
        order = "ORDER BY platform, workspace, channel LIMIT ?"
        async with self._connection() as db:
            if agent_id is None:
                rows = await _fetch(db, f"{columns} {order}", (limit,))
            else:
                rows = await _fetch(db, f"{columns} WHERE agent_id = ? {order}", (agent_id, limit))
        return [ChannelBinding(**dict(row)) for row in rows]

    # claims

    async def claim(self, *, key: str, owner: str, ttl_seconds: float) -> bool:
        now = self._now_ms()
        expires_at = now + round(ttl_seconds * 1000)
        async with self._connection() as db:  # one statement: one trip to SQLite's thread
            return bool(await _fetch(db, _CLAIM, (key, owner, expires_at, now)))

    async def release_claim(self, *, key: str, owner: str) -> bool:
        async with self._connection() as db:
            released = await _fetch(
                db, "DELETE FROM claims WHERE key = ? AND owner = ? RETURNING 1", (key, owner)
            )
        return bool(released)

    # turn journal

    async def journal_add(self, entry: NewJournalEntry) -> tuple[JournalEntry, bool]:
        now = self._now()
        now_ms = _to_ms(now)
        row = (
            entry.id,
            entry.key.canonical,
            entry.position,
            _dumps_compact(entry.message),
            now_ms,
            now_ms,
        )
        # One statement, atomic on its own: a single trip to SQLite's thread before an
        # acknowledgement; a redelivery (the rare case) reads the entry it found.
        async with self._connection() as db:
            if await _fetch(db, _INSERT_JOURNAL, row):
                created = JournalEntry(
                    **entry.model_dump(), state="received", created_at=now, updated_at=now
                )
                return created, True
            rows = await _fetch(db, "SELECT * FROM journal WHERE id = ?", (entry.id,))
        return _journal_entry(rows[0]), False

    async def journal_get(self, *, entry_id: str) -> JournalEntry | None:
        if not is_valid_journal_id(entry_id):
            return None
        async with self._connection() as db:
            rows = await _fetch(db, "SELECT * FROM journal WHERE id = ?", (entry_id,))
        return _journal_entry(rows[0]) if rows else None

    async def journal_next(self, *, key: PlatformKey) -> JournalEntry | None:
        async with self._connection() as db:
            rows = await _fetch(db, _JOURNAL_NEXT, (key.canonical,))
        return _journal_entry(rows[0]) if rows else None

    async def journal_take(self, *, key: PlatformKey) -> JournalEntry | None:
        async with self._connection() as db:
            rows = await _fetch(db, _JOURNAL_TAKE, (self._now_ms(), key.canonical))
        return _journal_entry(rows[0]) if rows else None

    async def journal_update(
        self,
        *,
        entry_id: str,
        state: JournalState = UNSET,
        conversation_id: str | None = UNSET,
        user_message_id: str | None = UNSET,
        reply_message_id: str | None = UNSET,
        shown_ref: str | None = UNSET,
        error: str | None = UNSET,
        add_attempt: bool = False,
    ) -> JournalEntry | None:
        changes = journal_changes(
            state=state,
            conversation_id=conversation_id,
            user_message_id=user_message_id,
            reply_message_id=reply_message_id,
            shown_ref=shown_ref,
            error=error,
        )
        if not is_valid_journal_id(entry_id):
            return None
        new_state: JournalState | None = None if state is UNSET else state
        params: dict[str, object] = {
            "id": entry_id,
            "updated_at": self._now_ms(),
            "add_attempt": 1 if add_attempt else 0,
            "set_state": new_state is not None,
            "state": new_state,
            "rank": -1 if new_state is None else JOURNAL_RANK[new_state],
            "pending": new_state in JOURNAL_UNFINISHED,
        }
        for name in _JOURNAL_FIELDS:
            params[f"set_{name}"] = name in changes
            params[name] = changes.get(name)
        async with self._connection() as db:
            rows = await _fetch(db, _UPDATE_JOURNAL, params)
        return _journal_entry(rows[0]) if rows else None

    async def journal_pending(
        self, *, limit: int = 100, updated_before: datetime | None = None
    ) -> list[PlatformKey]:
        if limit < 1:
            return []
        before = _MAX_INT64 if updated_before is None else _ceil_ms(updated_before)
        async with self._connection() as db:
            rows = await _fetch(db, _JOURNAL_PENDING, (before, limit))
        return [_place(row["place"]) for row in rows]

    async def journal_backlog(self) -> int:
        async with self._connection() as db:
            rows = await _fetch(db, "SELECT count(*) FROM journal WHERE pending = 1")
        return int(rows[0][0])

    async def journal_prune(self, *, finished_before: datetime) -> int:
        before = _ceil_ms(finished_before)
        async with self._connection() as db:
            return await _change(
                db, "DELETE FROM journal WHERE pending = 0 AND updated_at < ?", (before,)
            )

    # plumbing

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    def _now_ms(self) -> int:
        return _to_ms(self._clock())

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosqlite.Connection]:
        """The shared connection, held alone.

        Reads take the lock too: on a shared connection they would otherwise see another
        coroutine's unfinished (and possibly rolled back) transaction.
        """
        async with self._lock:
            if self._db is None:
                raise StoreUnavailable(f"{self.description} is not open")
            yield self._db

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._connection() as db, _transaction(db):
            yield db


@asynccontextmanager
async def _transaction(
    db: aiosqlite.Connection, begin: str = "BEGIN IMMEDIATE"
) -> AsyncIterator[None]:
    """Run the body in one transaction, rolled back on any exception, cancellation included.

    BEGIN sits inside the ``try``: a cancelled caller's BEGIN still runs on aiosqlite's thread,
    and the ROLLBACK queued behind it ends that transaction before anyone else's starts.
    """
    try:
        await _change(db, begin)
        yield
        await _change(db, "COMMIT")
    except BaseException:
        await _rollback(db)
        raise


async def _rollback(db: aiosqlite.Connection) -> None:
    try:
        await db.execute("ROLLBACK")
    except sqlite3.Error:
        # No transaction left to end: BEGIN failed, or the COMMIT ran after all.
        log.debug("rollback found no transaction", exc_info=True)


async def _fetch(db: aiosqlite.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    try:
        return list(await db.execute_fetchall(sql, params))
    except sqlite3.Error as error:
        raise StoreError(f"SQLite query failed: {error}") from error


async def _change(db: aiosqlite.Connection, sql: str, params: Params = ()) -> int:
    """Run one statement; returns how many rows it inserted, updated or deleted."""
    try:
        async with db.execute(sql, params) as cursor:
            changed = cursor.rowcount
    except sqlite3.Error as error:
        raise StoreError(f"SQLite statement failed: {error}") from error
    return changed


async def _change_many(
    db: aiosqlite.Connection, sql: str, rows: Sequence[Sequence[object]]
) -> None:
    if not rows:
        return
    try:
        async with db.executemany(sql, rows):
            pass
    except sqlite3.Error as error:
        raise StoreError(f"SQLite statement failed: {error}") from error


async def _add_api_key_columns(db: aiosqlite.Connection) -> None:
    columns = {row["name"] for row in await _fetch(db, "PRAGMA table_info(api_keys)")}
    if "platforms" not in columns:
        for statement in _API_KEY_COLUMNS_ADDED:
            await _change(db, statement)


async def _prune(db: aiosqlite.Connection, now_ms: int) -> None:
    """Keep the event and claim tables bounded: expired rows mean nothing any more."""
    await _change(db, "DELETE FROM processed_events WHERE expires_at <= ?", (now_ms,))
    await _change(db, "DELETE FROM claims WHERE expires_at <= ?", (now_ms,))


async def _match_text(
    db: aiosqlite.Connection, text: str, filters: Sequence[str], order: str
) -> tuple[str, str]:
    """Find the conversations holding ``text`` (into ``temp.search_matches``, this connection's
    own table: filling it takes no lock on the file); returns the count and page statements
    that combine them with the other filters, in the caller's transaction.
    """
    matches, params = _text_matches(text)
    await _change(db, "DELETE FROM temp.search_matches")
    found = await _change(
        db, f"INSERT OR IGNORE INTO temp.search_matches (matched_id) {matches}", params
    )
    if found <= _FEW_MATCHES:
        # Few: look each one up (and sort them for the page).
        joined = (
            "temp.search_matches AS m CROSS JOIN conversations ON conversations.id = m.matched_id"
        )
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        count_sql = f"SELECT count(*) FROM {joined} {where}"  # noqa: S608
        page_sql = f"SELECT conversations.* FROM {joined} {where} {order}"  # noqa: S608
        return count_sql, page_sql
    # Many: SQLite counts through whichever index suits the other filters, and the page walks
    # the order's index until it has enough matches (the unary + keeps it off the id index).
    counted = " AND ".join([*filters, "id IN temp.search_matches"])
    walked = " AND ".join([*filters, "+id IN temp.search_matches"])
    count_sql = f"SELECT count(*) FROM conversations WHERE {counted}"  # noqa: S608
    page_sql = f"SELECT * FROM conversations WHERE {walked} {order}"  # noqa: S608
    return count_sql, page_sql


def _text_matches(text: str) -> tuple[str, list[object]]:
    """A SELECT of the ids of conversations whose title, summary or source holds ``text``
    caselessly (``str.casefold``), and its parameters.

    A folded needle of three or more characters is one FTS5 phrase: its trigrams, consecutive.
    The tokenizer makes a token of every three characters of the text as they are, so the phrase
    holds exactly where the needle is a substring, but for two exceptions checked with ``instr``:
    the tokenizer stops at a NUL (text holding one is flagged ``has_nul`` and checked whole), and
    reads U+FFFD, U+FFFE and U+FFFF alike (a needle holding one has its phrase's rows checked).
    A needle with a NUL (which would end the FTS5 query) or shorter than a trigram scans all the
    folded text with ``instr``. Queued conversations are folded here, in Python: usually none.
    """
    needle = text.casefold()
    folded: list[object] = [needle] * 3
    queued = f"UNION ALL {_QUEUED_MATCHES}"
    if len(needle) < _TRIGRAM or "\x00" in needle:
        return f"{_SCANNED_MATCHES} {_FOLDED_MATCH} AND {_NOT_QUEUED} {queued}", [*folded, *folded]
    # One FTS5 phrase: inside double quotes every character is text, and "" is a quote.
    phrase = '"' + needle.replace('"', '""') + '"'
    params: list[object] = [phrase]
    indexed = f"{_PHRASE_MATCHES} {_NOT_QUEUED}"
    if not _UNTOKENIZED.isdisjoint(needle):
        indexed = f"{_CONFIRMED_PHRASE_MATCHES} {_FOLDED_MATCH} AND {_NOT_QUEUED}"
        params = [phrase, *folded]
    nul = f"{_NUL_MATCHES} {_FOLDED_MATCH} AND {_NOT_QUEUED}"
    return f"{indexed} UNION ALL {nul} {queued}", [*params, *folded, *folded]


async def _index_queued(
    db: aiosqlite.Connection, *, conversation_id: str | None = None, limit: int = 1
) -> int:
    """Fold queued conversations (this one, or up to ``limit``) into the search text.

    Runs inside the caller's transaction, which holds the write lock: new rows can take the
    next free ids. Returns how many queued conversations it handled. FTS5 gets the batch's old
    texts to forget, then the new ones, each in rowid order (which it buffers best).
    """
    if conversation_id is None:
        rows = await _fetch(db, f"{_QUEUED} LIMIT ?", (limit,))
    else:
        rows = await _fetch(db, f"{_QUEUED} WHERE p.conversation_id = ?", (conversation_id,))
    if not rows:
        return 0
    # A queued conversation deleted since (its delete trigger normally sees to this).
    await _change_many(
        db,
        "DELETE FROM conversation_search WHERE search_id = ?",
        [
            (row["search_id"],)
            for row in rows
            if row["title"] is None and row["search_id"] is not None
        ],
    )
    found = [row for row in rows if row["title"] is not None]
    old = sorted(
        (
            (row["search_id"], row["old_title"], row["old_summary"], row["old_source"])
            for row in found
            if row["old_title"] is not None
        ),
        key=itemgetter(0),
    )
    await _change_many(db, _FORGET_TEXT, old)
    last_id: int = rows[0]["last_search_id"] or 0
    new: list[tuple[object, ...]] = []
    nul_changed: list[tuple[object, ...]] = []
    texts: list[tuple[int, str | None, str | None, str | None]] = []
    for row in found:
        text = _folded(row)
        has_nul = any(value is not None and "\x00" in value for value in text)
        search_id = row["search_id"]
        if search_id is None:
            last_id += 1
            search_id = last_id
            new.append((search_id, row["id"], has_nul))
        elif bool(row["has_nul"]) != has_nul:
            nul_changed.append((has_nul, search_id))
        texts.append((search_id, *text))
    texts.sort(key=itemgetter(0))
    await _change_many(
        db,
        "INSERT INTO conversation_search (search_id, conversation_id, has_nul) VALUES (?, ?, ?)",
        new,
    )
    await _change_many(
        db, "UPDATE conversation_search SET has_nul = ? WHERE search_id = ?", nul_changed
    )
    await _change_many(db, _KEEP_FOLDED, texts)
    await _change_many(db, _LEARN_TEXT, texts)
    await _change_many(
        db,
        "DELETE FROM conversation_search_pending WHERE conversation_id = ?",
        [(row["id"],) for row in rows],
    )
    return len(rows)


def _folded(row: sqlite3.Row) -> tuple[str | None, str | None, str | None]:
    """A conversation's title, summary and source as search holds them."""
    return _fold(row["title"]), _fold(row["summary"]), _fold(row["source"])


def _fold(value: object) -> str | None:
    """Caseless text for search; SQLite's own lower() only folds ASCII letters."""
    return value.casefold() if isinstance(value, str) else None


def _to_ms(moment: datetime) -> int:
    return (truncate_ms(moment) - _EPOCH) // _ONE_MS


def _from_ms(ms: int) -> datetime:
    return _EPOCH + ms * _ONE_MS


def _ceil_ms(moment: datetime) -> int:
    """The first whole millisecond at or after ``moment``: bounds for ``>=`` comparisons."""
    ms = _to_ms(moment)
    return ms + 1 if moment.microsecond % 1000 else ms


def _optional_time(ms: int | None) -> datetime | None:
    return None if ms is None else _from_ms(ms)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _dumps_compact(value: object) -> str:
    """As ``memory.base.journal_message_size`` measures it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _goal_json(check: GoalCheck) -> str:
    return _dumps(
        {
            "reached": check.reached,
            "checked_at": _to_ms(check.checked_at),
            "covered_seq": check.covered_seq,
            "summary": check.summary,
            "missing": list(check.missing),
        }
    )


def _goal(text: str | None) -> GoalState | None:
    if text is None:
        return None
    stored: dict[str, Any] = json.loads(text)
    return GoalState(
        reached=stored["reached"],
        checked_at=_from_ms(stored["checked_at"]),
        covered_seq=stored["covered_seq"],
        summary=stored["summary"],
        missing=tuple(stored["missing"]),
    )


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        agent_id=row["agent_id"],
        key=PlatformKey(
            platform=row["platform"],
            workspace=row["workspace"],
            channel=row["channel"],
            thread=row["thread"],
        ),
        created_at=_from_ms(row["created_at"]),
        updated_at=_from_ms(row["updated_at"]),
        closed_at=_optional_time(row["closed_at"]),
        title=row["title"],
        data=json.loads(row["data"]),
        source=row["source"],
        tags=tuple(json.loads(row["tags"])),
        summary=row["summary"],
        summary_seq=row["summary_seq"],
        message_count=row["message_count"],
        last_message_at=_optional_time(row["last_message_at"]),
        goal=_goal(row["goal"]),
        goal_pending=bool(row["goal_pending"]),
    )


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        role=row["role"],
        author_id=row["author_id"],
        author_name=row["author_name"],
        text=row["text"],
        data=None if row["data"] is None else json.loads(row["data"]),
        platform_message_id=row["platform_message_id"],
        created_at=_from_ms(row["created_at"]),
        token_count=row["token_count"],
        error=row["error"],
    )


def _goal_check(row: sqlite3.Row) -> GoalCheck:
    return GoalCheck(
        id=row["id"],
        conversation_id=row["conversation_id"],
        agent_id=row["agent_id"],
        checked_at=_from_ms(row["checked_at"]),
        reached=bool(row["reached"]),
        summary=row["summary"],
        missing=tuple(json.loads(row["missing"])),
        covered_seq=row["covered_seq"],
        error=row["error"],
        posted_at=_optional_time(row["posted_at"]),
    )


def _agent(row: sqlite3.Row) -> StoredAgent:
    return StoredAgent(
        id=row["id"],
        definition=json.loads(row["definition"]),
        created_at=_from_ms(row["created_at"]),
        updated_at=_from_ms(row["updated_at"]),
    )


def _api_key(row: sqlite3.Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        scope=row["scope"],
        agents=tuple(json.loads(row["agents"])),
        platforms=tuple(json.loads(row["platforms"])),
        workspaces=tuple(json.loads(row["workspaces"])),
        key_hash=row["key_hash"],
        hint=row["hint"],
        created_at=_from_ms(row["created_at"]),
        last_used_at=_optional_time(row["last_used_at"]),
        revoked_at=_optional_time(row["revoked_at"]),
    )


def _place(canonical: str) -> PlatformKey:
    """The key whose ``canonical`` this is (no part may hold the separator)."""
    platform, workspace, channel, thread = canonical.split("\x1f")
    return PlatformKey(platform=platform, workspace=workspace, channel=channel, thread=thread)


def _journal_entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        key=_place(row["place"]),
        position=row["position"],
        message=json.loads(row["message"]),
        state=row["state"],
        created_at=_from_ms(row["created_at"]),
        updated_at=_from_ms(row["updated_at"]),
        attempts=row["attempts"],
        conversation_id=row["conversation_id"],
        user_message_id=row["user_message_id"],
        reply_message_id=row["reply_message_id"],
        shown_ref=row["shown_ref"],
        error=row["error"],
    )
