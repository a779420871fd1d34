"""Text search in SQLite: a literal, caseless (:func:`memory.rules.fold`) substring of a
conversation's title, summary or source.

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

import sqlite3
from collections.abc import Sequence
from operator import itemgetter

import aiosqlite

from memory.rules import (
    fold,
)
from memory.sqlite.sql import change, change_many, fetch, transaction

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

MATCHES_TABLE = """
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


async def match_text(
    db: aiosqlite.Connection, text: str, filters: Sequence[str], order: str
) -> tuple[str, str]:
    """Find the conversations holding ``text`` (into ``temp.search_matches``, this connection's
    own table: filling it takes no lock on the file); returns the count and page statements
    that combine them with the other filters, in the caller's transaction.
    """
    matches, params = _text_matches(text)
    await change(db, "DELETE FROM temp.search_matches")
    found = await change(
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
    needle = fold(text)
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


async def index_queued(
    db: aiosqlite.Connection, *, conversation_id: str | None = None, limit: int = 1
) -> int:
    """Fold queued conversations (this one, or up to ``limit``) into the search text.

    Runs inside the caller's transaction, which holds the write lock: new rows can take the
    next free ids. Returns how many queued conversations it handled. FTS5 gets the batch's old
    texts to forget, then the new ones, each in rowid order (which it buffers best).
    """
    if conversation_id is None:
        rows = await fetch(db, f"{_QUEUED} LIMIT ?", (limit,))
    else:
        rows = await fetch(db, f"{_QUEUED} WHERE p.conversation_id = ?", (conversation_id,))
    if not rows:
        return 0
    # A queued conversation deleted since (its delete trigger normally sees to this).
    await change_many(
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
    await change_many(db, _FORGET_TEXT, old)
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
    await change_many(
        db,
        "INSERT INTO conversation_search (search_id, conversation_id, has_nul) VALUES (?, ?, ?)",
        new,
    )
    await change_many(
        db, "UPDATE conversation_search SET has_nul = ? WHERE search_id = ?", nul_changed
    )
    await change_many(db, _KEEP_FOLDED, texts)
    await change_many(db, _LEARN_TEXT, texts)
    await change_many(
        db,
        "DELETE FROM conversation_search_pending WHERE conversation_id = ?",
        [(row["id"],) for row in rows],
    )
    return len(rows)


async def index_all_queued(db: aiosqlite.Connection) -> None:
    """Fold everything queued (all of an upgraded file, or what an older release's processes
    wrote), a batch per transaction so that other processes are not held up."""
    indexed = _INDEX_BATCH
    while indexed == _INDEX_BATCH:
        async with transaction(db):
            indexed = await index_queued(db, limit=_INDEX_BATCH)


def _folded(row: sqlite3.Row) -> tuple[str | None, str | None, str | None]:
    """A conversation's title, summary and source as search holds them."""
    return fold_or_none(row["title"]), fold_or_none(row["summary"]), fold_or_none(row["source"])


def fold_or_none(value: object) -> str | None:
    """Caseless text for search (SQLite's own lower() only folds ASCII letters)."""
    return fold(value) if isinstance(value, str) else None
