"""Embeddings: text as vectors, so memory and knowledge are also found by meaning, not only by
shared words (issue #16). Any OpenAI-compatible embeddings endpoint (OpenAI, Ollama, llama.cpp,
vLLM) through the official SDK; texts are sent in batches and their vectors cached by content.

Vectors are kept as unit-length float32 bytes: similarity is then a dot product, computed with
numpy for many vectors at once (off the event loop: callers run :func:`ranked` in a thread).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import openai
from openai import AsyncOpenAI

from bot.llm import ModelError
from bot.lru import BoundedLRU
from config.redact import redact_url
from config.settings import Settings

logger = logging.getLogger(__name__)

Vector = bytes
"""A unit-length float32 vector, as bytes."""
BATCH = 64
"""Texts per embeddings request."""
CACHE = 10_000
"""Vectors kept in the process, by the SHA-256 of their text."""
FUSION_K = 60
"""Reciprocal rank fusion's constant: how much the first places of a ranking weigh."""


class Embedder(Protocol):
    @property
    def model(self) -> str: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text, in order. Raises :class:`ModelError`."""
        ...

    async def close(self) -> None: ...


def pack(values: Sequence[float]) -> Vector:
    """A vector as unit-length float32 bytes (a zero vector stays zero)."""
    import numpy as np  # only configurations with an embeddings model pay for numpy

    array = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return (array / norm if norm else array).astype(np.float32).tobytes()


def ranked(query: Vector, candidates: Sequence[tuple[str, Vector]], limit: int) -> list[str]:
    """The ids of the ``limit`` candidates most similar to ``query`` (cosine), best first;
    candidates of another dimension are left out. CPU work: call it in a worker thread."""
    import numpy as np

    wanted = np.frombuffer(query, dtype=np.float32)
    usable = [(key, vector) for key, vector in candidates if len(vector) == len(query)]
    if not usable or limit < 1:
        return []
    matrix = np.frombuffer(b"".join(vector for _, vector in usable), dtype=np.float32)
    scores = matrix.reshape(len(usable), wanted.size) @ wanted
    order = np.argsort(-scores, kind="stable")[:limit]
    return [usable[int(n)][0] for n in order]


def fuse(rankings: Sequence[Sequence[str]], limit: int) -> list[str]:
    """Reciprocal rank fusion: each id scores 1 / (k + rank) in every ranking it is in; ties
    keep the order of the first ranking that has them."""
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (FUSION_K + rank)
            first_seen.setdefault(key, len(first_seen))
    order = sorted(scores, key=lambda key: (-scores[key], first_seen[key]))
    return order[:limit]


class QueryVector:
    """A turn's message embedding, asked of the model only when something needs it (the
    speaker's memories, or an agent whose documents have vectors) and then once; None when
    the model fails (the turn searches by words; logged by ``on_error``)."""

    def __init__(
        self, embedder: Embedder, text: str, on_error: Callable[[ModelError], None]
    ) -> None:
        self._embedder = embedder
        self._text = text
        self._on_error = on_error
        self._asked = False
        self._vector: Vector | None = None

    async def get(self) -> Vector | None:
        if not self._asked:
            self._asked = True
            try:
                (self._vector,) = await self._embedder.embed([self._text])
            except ModelError as exc:
                self._on_error(exc)
        return self._vector


class OpenAIEmbedder:
    """Embeddings through the official SDK, batched, cached by content."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
    ) -> None:
        self._model = model
        self._base_url = base_url
        self._client = AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._cache: BoundedLRU[str, Vector] = BoundedLRU(CACHE)
        self.requests = 0

    @property
    def model(self) -> str:
        return self._model

    def __repr__(self) -> str:
        where = redact_url(self._base_url or "") or "api.openai.com"
        return f"OpenAIEmbedder({self._model} at {where})"

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        keys = [hashlib.sha256(f"{self._model}\x1f{text}".encode()).hexdigest() for text in texts]
        missing = list(dict.fromkeys(k for k in keys if self._cache.get(k) is None))
        wanted = dict(zip(keys, texts, strict=True))
        for start in range(0, len(missing), BATCH):
            batch = missing[start : start + BATCH]
            for key, vector in zip(
                batch, await self._request([wanted[k] for k in batch]), strict=True
            ):
                self._cache.put(key, vector)
        found = [self._cache.get(key) for key in keys]
        if any(vector is None for vector in found):  # a cache smaller than one call's texts
            return await self._uncached(texts)
        return [vector for vector in found if vector is not None]

    async def _uncached(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), BATCH):
            vectors += await self._request(list(texts[start : start + BATCH]))
        return vectors

    async def _request(self, texts: list[str]) -> list[Vector]:
        self.requests += 1
        try:
            response = await self._client.embeddings.create(
                model=self._model, input=texts, encoding_format="float"
            )
        except openai.OpenAIError as exc:
            raise ModelError(f"the embeddings model failed ({exc.__class__.__name__})") from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise ModelError(f"the embeddings model answered {len(data)} of {len(texts)} texts")
        return [pack(item.embedding) for item in data]

    async def close(self) -> None:
        await self._client.close()


def build_embedder(settings: Settings) -> Embedder | None:
    """The configured embeddings model, or None (retrieval by keyword only)."""
    if not settings.embedding_model:
        return None
    key = settings.embedding_api_key or settings.openai_api_key
    return OpenAIEmbedder(
        model=settings.embedding_model,
        api_key=key.get_secret_value() if key is not None else None,
        base_url=settings.embedding_base_url or settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
    )
