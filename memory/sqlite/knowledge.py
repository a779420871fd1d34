"""Agents' documents in SQLite: documents, their chunks, and a word index of the chunks
(``knowledge_terms``: agent, word, chunk) that a search reads instead of the chunks."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence

from memory.base import KnowledgeChunk, KnowledgeDocument, NewChunk, NewDocument
from memory.recall import MAX_KNOWLEDGE_SCAN, query_terms, terms
from memory.rules import is_valid_id, paired_vectors, wants_rows
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.sql import fetch, from_ms, to_ms

_UPSERT_DOCUMENT = """
INSERT INTO knowledge_documents (
    id, agent_id, name, source, content_hash, size, chunks, created_at, updated_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (agent_id, name) DO UPDATE SET
    source = excluded.source, content_hash = excluded.content_hash, size = excluded.size,
    chunks = excluded.chunks, updated_at = excluded.updated_at
RETURNING *
"""

_CHUNK_COLUMNS = "c.id, c.document_id, c.agent_id, d.name AS document_name, c.n, c.text, c.tokens"


class SqliteKnowledge(SqliteConnection):
    """Agents' documents and their chunks."""

    async def put_document(
        self,
        document: NewDocument,
        chunks: Sequence[NewChunk],
        vectors: Sequence[bytes | None] = (),
    ) -> KnowledgeDocument:
        now = to_ms(self._now())
        new_id = uuid.uuid4().hex
        embeddings = paired_vectors(len(chunks), vectors, "chunk")
        rows = [(uuid.uuid4().hex, n, chunk) for n, chunk in enumerate(chunks)]

        def write(db: sqlite3.Connection) -> sqlite3.Row:
            kept: sqlite3.Row = db.execute(
                _UPSERT_DOCUMENT,
                (
                    new_id,
                    document.agent_id,
                    document.name,
                    document.source,
                    document.content_hash,
                    document.size,
                    len(rows),
                    now,
                    now,
                ),
            ).fetchone()
            document_id = kept["id"]
            db.execute("DELETE FROM knowledge_chunks WHERE document_id = ?", (document_id,))
            db.executemany(
                "INSERT INTO knowledge_chunks"
                " (id, document_id, agent_id, n, text, tokens, embedding)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (chunk_id, document_id, document.agent_id, n, chunk.text, chunk.tokens, vector)
                    for (chunk_id, n, chunk), vector in zip(rows, embeddings, strict=True)
                ],
            )
            db.executemany(
                "INSERT INTO knowledge_terms (agent_id, term, chunk_id) VALUES (?, ?, ?)",
                [
                    (document.agent_id, term, chunk_id)
                    for chunk_id, _, chunk in rows
                    for term in terms(chunk.text)
                ],
            )
            return kept

        return _document(await self._grouped(write, "keep a document"))

    async def get_document(self, *, agent_id: str, name: str) -> KnowledgeDocument | None:
        async with self._connection() as db:
            found = await fetch(
                db,
                "SELECT * FROM knowledge_documents WHERE agent_id = ? AND name = ?",
                (agent_id, name),
            )
        return _document(found[0]) if found else None

    async def list_documents(self, *, agent_id: str | None = None) -> list[KnowledgeDocument]:
        sql = "SELECT * FROM knowledge_documents"
        params: tuple[str, ...] = ()
        if agent_id is not None:
            sql, params = sql + " WHERE agent_id = ?", (agent_id,)
        async with self._connection() as db:
            found = await fetch(db, sql + " ORDER BY agent_id, name", params)
        return [_document(row) for row in found]

    async def delete_document(self, *, agent_id: str, name: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            gone = db.execute(
                "DELETE FROM knowledge_documents WHERE agent_id = ? AND name = ?", (agent_id, name)
            )
            return gone.rowcount > 0

        return await self._grouped(delete, "delete a document")

    async def search_knowledge(
        self, *, agent_id: str, query: str, limit: int
    ) -> list[KnowledgeChunk]:
        words = query_terms(query)
        if not words or not wants_rows(limit):
            return []
        marks = ", ".join("?" * len(words))
        sql = f"""
            SELECT {_CHUNK_COLUMNS}
            FROM (
                SELECT chunk_id, count(*) AS shared FROM (
                    SELECT chunk_id FROM knowledge_terms
                    WHERE agent_id = ? AND term IN ({marks})
                    LIMIT ?
                )
                GROUP BY chunk_id
            ) AS found
            JOIN knowledge_chunks AS c ON c.id = found.chunk_id
            JOIN knowledge_documents AS d ON d.id = c.document_id
            ORDER BY found.shared DESC, d.name, c.n
            LIMIT ?
        """  # noqa: S608 - placeholders only
        async with self._connection() as db:
            found = await fetch(db, sql, (agent_id, *words, MAX_KNOWLEDGE_SCAN, limit))
        return [_chunk(row) for row in found]

    async def chunk_vectors(self, *, agent_id: str, limit: int) -> list[tuple[str, bytes]]:
        if not wants_rows(limit):
            return []
        async with self._connection() as db:
            rows = await fetch(
                db,
                "SELECT c.id, c.embedding FROM knowledge_chunks AS c"
                " JOIN knowledge_documents AS d ON d.id = c.document_id"
                " WHERE c.agent_id = ? AND c.embedding IS NOT NULL ORDER BY d.name, c.n LIMIT ?",
                (agent_id, limit),
            )
        return [(row["id"], bytes(row["embedding"])) for row in rows]

    async def get_chunks(self, *, ids: Sequence[str]) -> list[KnowledgeChunk]:
        wanted = [chunk_id for chunk_id in ids if is_valid_id(chunk_id)]
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        async with self._connection() as db:
            found = await fetch(
                db,
                f"SELECT {_CHUNK_COLUMNS} FROM knowledge_chunks AS c"  # noqa: S608
                f" JOIN knowledge_documents AS d ON d.id = c.document_id WHERE c.id IN ({marks})",
                wanted,
            )
        by_id = {row["id"]: _chunk(row) for row in found}
        return [by_id[chunk_id] for chunk_id in wanted if chunk_id in by_id]


def _document(row: sqlite3.Row) -> KnowledgeDocument:
    return KnowledgeDocument(
        id=row["id"],
        agent_id=row["agent_id"],
        name=row["name"],
        source=row["source"],
        content_hash=row["content_hash"],
        size=row["size"],
        chunks=row["chunks"],
        created_at=from_ms(row["created_at"]),
        updated_at=from_ms(row["updated_at"]),
    )


def _chunk(row: sqlite3.Row) -> KnowledgeChunk:
    return KnowledgeChunk(
        id=row["id"],
        document_id=row["document_id"],
        agent_id=row["agent_id"],
        document_name=row["document_name"],
        n=row["n"],
        text=row["text"],
        tokens=row["tokens"],
    )
