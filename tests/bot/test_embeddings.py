"""Embeddings: the vectors' arithmetic, and the client against the fake OpenAI server's
embeddings endpoint (batches, the content cache, failures)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.embeddings import BATCH, OpenAIEmbedder, fuse, pack, ranked
from bot.llm import ModelError
from tests.support.fake_openai import FakeOpenAI


def vector(*values: float) -> bytes:
    return pack(values)


def test_vectors_are_unit_length_float32() -> None:
    packed = np.frombuffer(pack([3.0, 4.0]), dtype=np.float32)
    assert packed.tolist() == pytest.approx([0.6, 0.8])
    assert np.frombuffer(pack([0.0, 0.0]), dtype=np.float32).tolist() == [0.0, 0.0]


def test_ranked_orders_by_cosine_and_skips_other_dimensions() -> None:
    candidates = [
        ("far", vector(0, 1)),
        ("near", vector(1, 0.1)),
        ("middle", vector(1, 1)),
        ("other-model", vector(1, 0, 0)),
    ]
    assert ranked(vector(1, 0), candidates, limit=10) == ["near", "middle", "far"]
    assert ranked(vector(1, 0), candidates, limit=1) == ["near"]
    assert ranked(vector(1, 0), [], limit=5) == []


def test_fusion_rewards_agreement_between_rankings() -> None:
    keyword = ["a", "b", "c"]
    meaning = ["c", "d", "a"]
    assert fuse([keyword, meaning], limit=4) == ["a", "c", "b", "d"]
    assert fuse([keyword, []], limit=2) == ["a", "b"]


@pytest.fixture
async def embedder(fake_openai: FakeOpenAI) -> OpenAIEmbedder:
    client = OpenAIEmbedder(
        model="fake-embed",
        api_key="sk-embed",
        base_url=fake_openai.base_url,
        timeout=5,
        max_retries=0,
    )
    yield client  # type: ignore[misc]
    await client.close()


async def test_texts_are_embedded_in_batches_and_cached(
    embedder: OpenAIEmbedder, fake_openai: FakeOpenAI
) -> None:
    texts = [f"text number {n}" for n in range(BATCH + 6)]
    vectors = await embedder.embed(texts)
    assert len(vectors) == len(texts)
    requests = fake_openai.embedding_requests()
    assert [len(r.body["input"]) for r in requests] == [BATCH, 6]
    assert requests[0].body["model"] == "fake-embed"
    assert requests[0].headers["authorization"] == "Bearer sk-embed"
    again = await embedder.embed([texts[3], "a new one", texts[3]])
    assert again[0] == vectors[3] == again[2]
    assert len(fake_openai.embedding_requests()) == 3
    assert fake_openai.embedding_requests()[-1].body["input"] == ["a new one"]


async def test_similar_meaning_ranks_first(embedder: OpenAIEmbedder) -> None:
    """With the fake model's concepts, 'allergic to peanuts' is about nuts and allergies."""
    facts = ["I am allergic to peanuts.", "I live in Paris.", "I have two cats."]
    vectors = await embedder.embed(facts)
    (query,) = await embedder.embed(["Any nut allergy I should know about?"])
    order = ranked(query, list(zip(facts, vectors, strict=True)), limit=3)
    assert order[0] == "I am allergic to peanuts."


async def test_a_failing_server_is_a_model_error(fake_openai: FakeOpenAI) -> None:
    broken = OpenAIEmbedder(
        model="fake-embed",
        api_key="sk-embed",
        base_url=fake_openai.base_url + "/missing",
        timeout=5,
        max_retries=0,
    )
    try:
        with pytest.raises(ModelError, match="embeddings model failed"):
            await broken.embed(["hello"])
    finally:
        await broken.close()


def test_the_repr_hides_credentials() -> None:
    client = OpenAIEmbedder(
        model="m",
        api_key="sk-secret",
        base_url="http://user:pw@127.0.0.1:9/v1",
        timeout=1,
        max_retries=0,
    )
    assert "pw" not in repr(client)
    assert "sk-secret" not in repr(client)
