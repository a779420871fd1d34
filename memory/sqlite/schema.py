"""The SQLite schema as numbered migrations, applied in order at ``open``.

The file's ``PRAGMA user_version`` says how many have run; each migration runs in the opening
transaction (``BEGIN IMMEDIATE``, so two processes opening one file take turns) and the version
moves with it, so a migration is never half applied. Files from before numbered migrations
have version 0 and any earlier schema: every migration is written to be a no-op for what such
a file already has (``IF NOT EXISTS``, a column added only when missing). A file with a version
this release does not know was made by a newer release: it is refused rather than guessed at.

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosqlite

from bot.errors import StoreError
from memory.sqlite.sql import change, fetch

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]

_TABLES = (
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
)
"""Version 1: conversations, messages, tags, events, goal checks, bindings, claims, agents and
API keys, with the indexes listing pages read in their order (which replace the earlier
two-column indexes)."""

_API_KEY_PLACE_COLUMNS = (
    "ALTER TABLE api_keys ADD COLUMN platforms TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE api_keys ADD COLUMN workspaces TEXT NOT NULL DEFAULT '[]'",
)
"""Version 2: API keys limited to places; keys from before have no limit."""

_JOURNAL = (
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
)
"""Version 3: the turn journal."""

_SEARCH = (
    # Text search: see memory.sqlite.search. INTEGER PRIMARY KEYs keep the rowids FTS5 refers
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
"""Version 4: text search (see :mod:`memory.sqlite.search`)."""


_LEANER_WRITES = (
    # A drain's step updates an entry's updated_at: kept out of the index it would move in.
    "DROP INDEX journal_unfinished",
    """
    CREATE INDEX journal_unfinished
    ON journal (place, created_at, id, pending) WHERE pending = 1
    """,
    # Claims come and go with every drain: one B-tree instead of a table and its key's index.
    """
    CREATE TABLE claims_by_key (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    "INSERT INTO claims_by_key (key, owner, expires_at) SELECT key, owner, expires_at FROM claims",
    "DROP TABLE claims",
    "ALTER TABLE claims_by_key RENAME TO claims",
    "CREATE INDEX claims_expiry ON claims (expires_at)",
)
"""Version 5: fewer B-trees written per journal step."""


_MEMORIES = (
    # Facts about people (memory.sqlite.memories): ``folded`` is the text casefolded, for
    # listings that filter by text; the partial index reads a scope's current memories
    # newest first.
    """
    CREATE TABLE IF NOT EXISTS memories (
        id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        person TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        text TEXT NOT NULL,
        folded TEXT NOT NULL,
        private INTEGER NOT NULL,
        conversation_id TEXT,
        message_id TEXT,
        supersedes TEXT,
        superseded_by TEXT,
        created_at INTEGER NOT NULL
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS memories_current
    ON memories (platform, workspace, person, agent_id, created_at, id)
    WHERE superseded_by IS NULL
    """,
    "CREATE INDEX IF NOT EXISTS memories_by_time ON memories (created_at, id)",
)
"""Version 6: memories about people."""


_KNOWLEDGE = (
    # Agents' documents (memory.sqlite.knowledge): a chunk's words in knowledge_terms, so a
    # search reads the words it looks for, never the chunks; deleting a document deletes its
    # chunks and their words (foreign keys are on).
    """
    CREATE TABLE IF NOT EXISTS knowledge_documents (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        name TEXT NOT NULL,
        source TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (agent_id, name)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS knowledge_chunks (
        id TEXT PRIMARY KEY,
        document_id TEXT NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
        agent_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        text TEXT NOT NULL,
        tokens INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS knowledge_chunks_document ON knowledge_chunks (document_id, n)",
    """
    CREATE TABLE IF NOT EXISTS knowledge_terms (
        agent_id TEXT NOT NULL,
        term TEXT NOT NULL,
        chunk_id TEXT NOT NULL REFERENCES knowledge_chunks (id) ON DELETE CASCADE,
        PRIMARY KEY (agent_id, term, chunk_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS knowledge_terms_chunk ON knowledge_terms (chunk_id)",
)
"""Version 7: agents' documents."""

_SOURCES = "ALTER TABLE messages ADD COLUMN sources TEXT"
_USER = "ALTER TABLE conversations ADD COLUMN user TEXT"
_EMBEDDINGS = (
    ("memories", "ALTER TABLE memories ADD COLUMN embedding BLOB"),
    ("knowledge_chunks", "ALTER TABLE knowledge_chunks ADD COLUMN embedding BLOB"),
)
"""Version 10: embeddings of memories and chunks (unit-length float32 bytes, NULL for none)."""
_KEY_VALUES = """
CREATE TABLE IF NOT EXISTS key_values (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID
"""
"""Version 11: small values processes share (the Discord commands last registered)."""
"""Version 9: the user of the caller's system an API conversation is with."""
"""Version 8: the knowledge chunks each reply was given (a JSON list, NULL for none)."""

_USAGE = (
    # Model usage (memory.sqlite.usage): one row per model call; ``day`` is the UTC day
    # (days since 1970-01-01) so totals per day group on a column.
    """
    CREATE TABLE IF NOT EXISTS usage (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        day INTEGER NOT NULL,
        agent_id TEXT NOT NULL,
        conversation_id TEXT,
        purpose TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        estimated INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS usage_by_agent ON usage (agent_id, at)",
    "CREATE INDEX IF NOT EXISTS usage_by_conversation ON usage (conversation_id, at)",
    "CREATE INDEX IF NOT EXISTS usage_by_time ON usage (at)",
)
"""Version 11: model usage per call."""


async def _run(db: aiosqlite.Connection, statements: tuple[str, ...]) -> None:
    for statement in statements:
        await change(db, statement)


async def _tables(db: aiosqlite.Connection) -> None:
    await _run(db, _TABLES)


async def _api_key_places(db: aiosqlite.Connection) -> None:
    columns = {row["name"] for row in await fetch(db, "PRAGMA table_info(api_keys)")}
    for statement, column in zip(_API_KEY_PLACE_COLUMNS, ("platforms", "workspaces"), strict=True):
        if column not in columns:
            await change(db, statement)


async def _journal(db: aiosqlite.Connection) -> None:
    await _run(db, _JOURNAL)


async def _search(db: aiosqlite.Connection) -> None:
    """The search tables, and every conversation of a file from before them queued for them
    (folded at the end of ``open``, in batches)."""
    searchable = await fetch(
        db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'conversation_search'"
    )
    await _run(db, _SEARCH)
    if not searchable:
        await change(
            db,
            "INSERT INTO conversation_search_pending (conversation_id)"
            " SELECT id FROM conversations",
        )


async def _leaner_writes(db: aiosqlite.Connection) -> None:
    await _run(db, _LEANER_WRITES)


async def _memories(db: aiosqlite.Connection) -> None:
    await _run(db, _MEMORIES)


async def _knowledge(db: aiosqlite.Connection) -> None:
    await _run(db, _KNOWLEDGE)


async def _sources(db: aiosqlite.Connection) -> None:
    columns = {row["name"] for row in await fetch(db, "PRAGMA table_info(messages)")}
    if "sources" not in columns:
        await change(db, _SOURCES)


async def _user(db: aiosqlite.Connection) -> None:
    columns = {row["name"] for row in await fetch(db, "PRAGMA table_info(conversations)")}
    if "user" not in columns:
        await change(db, _USER)


async def _embeddings(db: aiosqlite.Connection) -> None:
    for table, statement in _EMBEDDINGS:
        columns = {row["name"] for row in await fetch(db, f"PRAGMA table_info({table})")}
        if "embedding" not in columns:
            await change(db, statement)


async def _usage(db: aiosqlite.Connection) -> None:
    await _run(db, _USAGE)


async def _key_values(db: aiosqlite.Connection) -> None:
    await change(db, _KEY_VALUES)


_FEEDBACK = """
CREATE TABLE IF NOT EXISTS feedback (
    message_id TEXT NOT NULL,
    person TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    rating TEXT NOT NULL,
    rated_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, person)
)
"""


async def _feedback(db: aiosqlite.Connection) -> None:
    """People's ratings of replies (the feedback buttons), found per reply and deleted per
    conversation."""
    await change(db, _FEEDBACK)
    await change(
        db, "CREATE INDEX IF NOT EXISTS feedback_conversation ON feedback (conversation_id)"
    )


MIGRATIONS: tuple[Migration, ...] = (
    _tables,
    _api_key_places,
    _journal,
    _search,
    _leaner_writes,
    _memories,
    _knowledge,
    _sources,
    _user,
    _embeddings,
    _usage,
    _key_values,
    _feedback,
)
"""Migration ``n`` (from 1) brings a file from version ``n - 1`` to ``n``."""

LATEST = len(MIGRATIONS)


async def version(db: aiosqlite.Connection) -> int:
    rows = await fetch(db, "PRAGMA user_version")
    return int(rows[0][0])


async def migrate(db: aiosqlite.Connection) -> int:
    """Apply the migrations the file has not had, inside the caller's write transaction.

    Returns the version the file had. Raises StoreError for a file from a newer release.
    """
    found = await version(db)
    if found > LATEST:
        raise StoreError(
            f"the SQLite file has schema version {found}, newer than this release knows"
            f" ({LATEST}): upgrade Parley or use another BOT_DATA_DIR"
        )
    for number in range(found + 1, LATEST + 1):
        await MIGRATIONS[number - 1](db)
    if found != LATEST:
        # PRAGMA takes no bound parameters; LATEST is this module's own integer.
        await change(db, f"PRAGMA user_version = {LATEST:d}")
    return found
