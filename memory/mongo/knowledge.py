"""Agents' documents in MongoDB: a document per document, a document per chunk holding its
words (``terms``, under a multikey index) so that a search reads the chunks that share a word
with the query, never every chunk."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import uuid4

from pymongo import ASCENDING, ReturnDocument

from memory.base import KnowledgeChunk, KnowledgeDocument, NewChunk, NewDocument
from memory.mongo.connection import Document, MongoConnection, utc
from memory.mongo.schema import KNOWLEDGE_CHUNKS, KNOWLEDGE_DOCUMENTS
from memory.recall import MAX_KNOWLEDGE_SCAN, query_terms, terms
from memory.rules import is_valid_id, paired_vectors, wants_rows

_CHUNK_FIELDS = {"terms": False, "embedding": False}


class MongoKnowledge(MongoConnection):
    """Agents' documents and their chunks."""

    async def put_document(
        self,
        document: NewDocument,
        chunks: Sequence[NewChunk],
        vectors: Sequence[bytes | None] = (),
    ) -> KnowledgeDocument:
        """The new chunks are written first, then the document points at them, then the old
        chunks go: a search meanwhile finds the old or the new text (briefly both)."""
        now = self._now()
        embeddings = paired_vectors(len(chunks), vectors, "chunk")
        documents, pieces = (
            self._collection(KNOWLEDGE_DOCUMENTS),
            self._collection(KNOWLEDGE_CHUNKS),
        )
        with self._errors("keep a document"):
            existing = await documents.find_one(
                {"agent_id": document.agent_id, "name": document.name}, projection={"_id": 1}
            )
            document_id = existing["_id"] if existing else uuid4().hex
            version = uuid4().hex
            if chunks:
                await pieces.insert_many(
                    [
                        {
                            "_id": uuid4().hex,
                            "document_id": document_id,
                            "version": version,
                            "agent_id": document.agent_id,
                            "document_name": document.name,
                            "n": n,
                            "text": chunk.text,
                            "tokens": chunk.tokens,
                            "terms": sorted(terms(chunk.text)),
                            "embedding": embeddings[n],
                        }
                        for n, chunk in enumerate(chunks)
                    ]
                )
            kept = await documents.find_one_and_update(
                {"_id": document_id},
                {
                    "$set": {
                        "agent_id": document.agent_id,
                        "name": document.name,
                        "source": document.source,
                        "content_hash": document.content_hash,
                        "size": document.size,
                        "chunks": len(chunks),
                        "version": version,
                        "updated_at": now,
                    },
                    "$setOnInsert": {"created_at": now},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            await pieces.delete_many({"document_id": document_id, "version": {"$ne": version}})
        assert kept is not None  # noqa: S101 - an upsert returning the document after it
        return _document(kept)

    async def get_document(self, *, agent_id: str, name: str) -> KnowledgeDocument | None:
        with self._errors("read a document"):
            found = await self._collection(KNOWLEDGE_DOCUMENTS).find_one(
                {"agent_id": agent_id, "name": name}
            )
        return None if found is None else _document(found)

    async def list_documents(self, *, agent_id: str | None = None) -> list[KnowledgeDocument]:
        conditions: Document = {} if agent_id is None else {"agent_id": agent_id}
        with self._errors("list documents"):
            found = await (
                self._collection(KNOWLEDGE_DOCUMENTS)
                .find(conditions, sort=[("agent_id", ASCENDING), ("name", ASCENDING)])
                .to_list()
            )
        return [_document(doc) for doc in found]

    async def delete_document(self, *, agent_id: str, name: str) -> bool:
        with self._errors("delete a document"):
            found = await self._collection(KNOWLEDGE_DOCUMENTS).find_one_and_delete(
                {"agent_id": agent_id, "name": name}
            )
            if found is None:
                return False
            await self._collection(KNOWLEDGE_CHUNKS).delete_many({"document_id": found["_id"]})
        return True

    async def search_knowledge(
        self, *, agent_id: str, query: str, limit: int
    ) -> list[KnowledgeChunk]:
        words = query_terms(query)
        if not words or not wants_rows(limit):
            return []
        with self._errors("search knowledge"):
            found = await (
                self._collection(KNOWLEDGE_CHUNKS)
                .find(
                    {"agent_id": agent_id, "terms": {"$in": words}},
                    projection={"embedding": False},
                )
                .limit(MAX_KNOWLEDGE_SCAN)
                .to_list()
            )
            current = {
                doc["_id"]: doc["version"]
                async for doc in self._collection(KNOWLEDGE_DOCUMENTS).find(
                    {"_id": {"$in": list({doc["document_id"] for doc in found})}},
                    projection={"version": 1},
                )
            }
        wanted = set(words)
        scored = [
            (len(wanted & set(doc["terms"])), doc)
            for doc in found
            if current.get(doc["document_id"]) == doc.get("version")
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1]["document_name"], pair[1]["n"]))
        return [_chunk(doc) for _, doc in scored[:limit]]

    async def chunk_vectors(self, *, agent_id: str, limit: int) -> list[tuple[str, bytes]]:
        """Only chunks of a document's current version (an upload being replaced may leave
        the old ones for a moment)."""
        if not wants_rows(limit):
            return []
        with self._errors("read chunk vectors"):
            versions = {
                doc["_id"]: doc["version"]
                async for doc in self._collection(KNOWLEDGE_DOCUMENTS).find(
                    {"agent_id": agent_id}, projection={"version": 1}
                )
            }
            docs = await (
                self._collection(KNOWLEDGE_CHUNKS)
                .find(
                    {"agent_id": agent_id, "embedding": {"$ne": None}},
                    projection={"embedding": 1, "document_id": 1, "version": 1},
                    sort=[("document_name", ASCENDING), ("n", ASCENDING)],
                )
                .limit(limit)
                .to_list()
            )
        return [
            (doc["_id"], bytes(doc["embedding"]))
            for doc in docs
            if versions.get(doc["document_id"]) == doc.get("version")
        ]

    async def get_chunks(self, *, ids: Sequence[str]) -> list[KnowledgeChunk]:
        wanted = [chunk_id for chunk_id in ids if is_valid_id(chunk_id)]
        if not wanted:
            return []
        with self._errors("read chunks"):
            found = await (
                self._collection(KNOWLEDGE_CHUNKS)
                .find({"_id": {"$in": wanted}}, projection=_CHUNK_FIELDS)
                .to_list()
            )
        by_id = {doc["_id"]: _chunk(doc) for doc in found}
        return [by_id[chunk_id] for chunk_id in wanted if chunk_id in by_id]


def _document(doc: Document) -> KnowledgeDocument:
    return KnowledgeDocument(
        id=doc["_id"],
        agent_id=doc["agent_id"],
        name=doc["name"],
        source=doc["source"],
        content_hash=doc["content_hash"],
        size=doc["size"],
        chunks=doc["chunks"],
        created_at=utc(doc["created_at"]),
        updated_at=utc(doc["updated_at"]),
    )


def _chunk(doc: Document) -> KnowledgeChunk:
    return KnowledgeChunk(
        id=doc["_id"],
        document_id=doc["document_id"],
        agent_id=doc["agent_id"],
        document_name=doc["document_name"],
        n=doc["n"],
        text=doc["text"],
        tokens=doc["tokens"],
    )
