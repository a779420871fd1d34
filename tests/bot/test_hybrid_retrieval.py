"""With an embeddings model configured, memory and knowledge are also found by meaning: a
message that shares no word with a fact or a passage still reaches it, fused with what shares
words. Against the fake OpenAI server's embeddings endpoint (concepts: 'allergy' and
'allergic', 'risotto' and 'carnaroli' mean alike to it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.embeddings import OpenAIEmbedder
from bot.engine import Engine, IncomingMessage
from bot.knowledge import KNOWLEDGE_HEADING
from bot.memory import MEMORY_HEADING
from memory.base import MemoryQuery, MemoryScope, NewMemory, PlatformKey
from tests.support.agents import agents_file, chef
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, RecordedRequest

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0")
ADA = MemoryScope(platform="slack", workspace="T1", person="U_ADA", agent_id="chef")


@pytest.fixture
async def embedder(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIEmbedder]:
    client = OpenAIEmbedder(
        model="fake-embed", api_key="k", base_url=fake_openai.base_url, timeout=5, max_retries=0
    )
    yield client
    await client.close()


def system_block(request: RecordedRequest, heading: str) -> str:
    for message in request.messages:
        content = str(message.get("content"))
        if message.get("role") == "system" and content.startswith(heading):
            return content
    return ""


def last_reply_request(fake_openai: FakeOpenAI) -> RecordedRequest:
    return [r for r in fake_openai.chat_requests() if "[parley:" not in r.system_text][-1]


async def ask(engine: Engine, text: str) -> None:
    incoming = IncomingMessage(key=KEY, text=text, author_id="U_ADA", author_name="Ada")
    await engine.reply(incoming).result()


async def remember(engine: Engine, *texts: str) -> None:
    """Learned through the engine, as a reply would (with their embeddings)."""
    for text in texts:
        await ask(engine, text)


@pytest.mark.parametrize("vectors", [False, True])
async def test_a_fact_is_found_by_meaning_only_with_vectors(
    make_engine: EngineFactory,
    fake_openai: FakeOpenAI,
    embedder: OpenAIEmbedder,
    vectors: bool,
) -> None:
    agents = agents_file(chef(memory={"extract": "inline"}, memory_tokens=40))
    engine = make_engine(agents, embedder=embedder if vectors else None)
    await remember(engine, "I am allergic to peanuts.", "I live in Paris.", "I have two cats.")
    kept = await engine.store.list_memories(MemoryQuery(person="U_ADA"))
    assert len(kept) == 3
    await ask(engine, "Any allergy I forgot?")  # no word in common with the fact
    block = system_block(last_reply_request(fake_openai), MEMORY_HEADING.split("{name}")[0])
    first_fact = block.splitlines()[1] if block else ""
    if vectors:
        assert first_fact == "- I am allergic to peanuts.", block
    else:
        assert first_fact != "- I am allergic to peanuts.", "newest first without vectors"


async def test_a_passage_is_found_by_meaning(
    make_engine: EngineFactory, fake_openai: FakeOpenAI, embedder: OpenAIEmbedder
) -> None:
    engine = make_engine(agents_file(chef()), embedder=embedder)
    agent = engine.agents.default
    for name, text in (
        ("desserts.md", b"Tiramisu needs mascarpone and strong coffee."),
        ("kitchen.md", b"Use Carnaroli for the creamiest result."),
    ):
        await engine.knowledge.put(
            agent, name, text, source="upload", count=lambda t: engine.count_tokens(t, agent)
        )
    await ask(engine, "How do I cook a risotto?")
    block = system_block(last_reply_request(fake_openai), KNOWLEDGE_HEADING)
    assert block.split("\n[", 2)[1].startswith("kitchen.md]\nUse Carnaroli"), block


async def test_without_an_embedder_the_passage_sharing_no_word_is_not_found(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef()))
    agent = engine.agents.default
    await engine.knowledge.put(
        agent,
        "kitchen.md",
        b"Use Carnaroli for the creamiest result.",
        source="upload",
        count=lambda text: engine.count_tokens(text, agent),
    )
    await ask(engine, "How do I cook a risotto?")
    assert system_block(last_reply_request(fake_openai), KNOWLEDGE_HEADING) == ""


async def test_a_failing_embeddings_model_leaves_keyword_search(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    broken = OpenAIEmbedder(
        model="m", api_key="k", base_url=fake_openai.base_url + "/gone", timeout=5, max_retries=0
    )
    try:
        engine = make_engine(agents_file(chef(memory={"extract": "inline"})), embedder=broken)
        await engine.store.add_memories([NewMemory(scope=ADA, text="Allergic to peanuts")])
        await ask(engine, "peanuts again?")
        block = system_block(last_reply_request(fake_openai), MEMORY_HEADING.split("{name}")[0])
        assert "Allergic to peanuts" in block
    finally:
        await broken.close()


async def test_the_message_is_embedded_only_when_something_needs_it(
    make_engine: EngineFactory, fake_openai: FakeOpenAI, embedder: OpenAIEmbedder
) -> None:
    engine = make_engine(agents_file(chef()), embedder=embedder)  # no memory
    await ask(engine, "How do I cook a risotto?")
    assert fake_openai.embedding_requests() == [], "no documents, no memory: nothing to compare"
    agent = engine.agents.default
    await engine.knowledge.put(
        agent,
        "kitchen.md",
        b"Use Carnaroli for the creamiest result.",
        source="upload",
        count=lambda text: engine.count_tokens(text, agent),
    )
    indexed = len(fake_openai.embedding_requests())
    await ask(engine, "And a second risotto question?")
    asked = fake_openai.embedding_requests()[indexed:]
    assert [r.body["input"] for r in asked] == [["And a second risotto question?"]]
