"""Agent knowledge: documents read and split, files kept in sync with the agents file, and
the relevant passages given to the model on each turn, recorded with the reply."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.engine import Engine, IncomingMessage
from bot.knowledge import (
    CHUNK_OVERLAP,
    KNOWLEDGE_HEADING,
    MAX_DOCUMENT_BYTES,
    DocumentError,
    Knowledge,
    chunk_text,
    document_text,
)
from config.agents import Agent
from memory.base import ConversationStore, PlatformKey
from tests.support.agents import agents_file, chef, plain
from tests.support.documents import tiny_pdf
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, RecordedRequest


def words(text: str) -> int:
    """A stand-in token count: one token a word."""
    return len(text.split())


# reading ----------------------------------------------------------------------------------


def test_markdown_and_text_are_read_as_they_are() -> None:
    assert document_text("a.md", b"# Pasta\n\nBoil it.") == "# Pasta\n\nBoil it."
    assert document_text("b.TXT", "\ufeffcafé".encode()) == "café", "a BOM is dropped"


def test_html_keeps_the_text_and_drops_scripts_and_styles() -> None:
    page = (
        b"<html><head><title>t</title><style>p{}</style></head><body>"
        b"<h1>Risotto</h1><p>Stir &amp; wait.</p><script>steal()</script></body></html>"
    )
    text = document_text("r.html", page)
    assert "Risotto" in text
    assert "Stir & wait." in text
    assert "steal" not in text
    assert "p{}" not in text


def test_a_pdf_is_read_as_text() -> None:
    assert document_text("menu.pdf", tiny_pdf("Saffron risotto needs patience")) == (
        "Saffron risotto needs patience"
    )


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("a.docx", b"x", "unknown kind of document"),
        ("tool.exe", b"\x00\xff\xfe", "unknown kind of document"),
        ("a.md", b"\xff\xfe\xfa", "not UTF-8 text"),
        ("a.pdf", b"%PDF-1.4 broken", "not a readable PDF"),
        ("a.md", b"x" * (MAX_DOCUMENT_BYTES + 1), "larger than 20 MB"),
    ],
)
def test_unreadable_documents_say_why(name: str, content: bytes, problem: str) -> None:
    with pytest.raises(DocumentError, match=problem):
        document_text(name, content)


# splitting --------------------------------------------------------------------------------


def test_chunks_are_token_sized_and_overlap() -> None:
    sentences = [f"Sentence number {n} talks about cooking." for n in range(60)]
    text = "\n\n".join(" ".join(sentences[n : n + 3]) for n in range(0, 60, 3))
    chunks = chunk_text(text, words, size=40, overlap=10)
    assert len(chunks) > 5
    assert all(chunk.tokens <= 40 for chunk in chunks)
    assert all(chunk.tokens == words(chunk.text) for chunk in chunks)
    for before, after in itertools.pairwise(chunks):
        tail = before.text.split(". ")[-1]
        assert tail in after.text, "each chunk starts with the end of the one before"
    joined = " ".join(chunk.text for chunk in chunks)
    assert all(sentence in joined for sentence in sentences), "nothing is lost"


def test_a_huge_paragraph_without_stops_is_still_split() -> None:
    chunks = chunk_text("word " * 1000, words, size=100, overlap=CHUNK_OVERLAP)
    assert len(chunks) >= 10
    assert all(chunk.tokens <= 100 for chunk in chunks)


def test_an_empty_document_has_no_chunks() -> None:
    assert chunk_text(" \n\n \n", words) == []
    assert [c.text for c in chunk_text("One line.", words)] == ["One line."]


# syncing the agents' files ----------------------------------------------------------------


def knowing(*paths: str, **overrides: object) -> Agent:
    return agents_file(chef(knowledge=list(paths), **overrides)).default


async def test_sync_indexes_changes_only_and_removes_what_is_gone(
    tmp_path: Path, store: ConversationStore
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pasta.md").write_text("Boil pasta in salted water.")
    (docs / "menu.pdf").write_bytes(tiny_pdf("Saffron risotto on Fridays"))
    (docs / "notes.bin").write_bytes(b"\x00")  # not a known kind: left alone
    (tmp_path / "extra.txt").write_text("Olive oil from Liguria.")
    agent = knowing("docs", "extra.txt")
    knowledge = Knowledge(store)

    def count_for(_: Agent) -> object:
        return words

    first = await knowledge.sync([agent], tmp_path, count_for)  # type: ignore[arg-type]
    assert sorted(first.indexed) == ["chef:docs/menu.pdf", "chef:docs/pasta.md", "chef:extra.txt"]
    again = await knowledge.sync([agent], tmp_path, count_for)  # type: ignore[arg-type]
    assert (again.indexed, len(again.unchanged)) == ([], 3)

    (docs / "pasta.md").write_text("Cook pasta al dente.")
    (tmp_path / "extra.txt").unlink()
    await knowledge.put(agent, "uploaded.md", b"An uploaded note.", source="upload", count=words)
    changed = await knowledge.sync([agent], tmp_path, count_for)  # type: ignore[arg-type]
    assert changed.indexed == ["chef:docs/pasta.md"]
    assert changed.removed == ["chef:extra.txt"]
    names = [d.name for d in await store.list_documents(agent_id="chef")]
    assert names == ["docs/menu.pdf", "docs/pasta.md", "uploaded.md"], "uploads stay"
    hits = await store.search_knowledge(agent_id="chef", query="dente", limit=3)
    assert [hit.text for hit in hits] == ["Cook pasta al dente."]
    assert await store.search_knowledge(agent_id="chef", query="salted", limit=3) == []


async def test_a_bad_file_is_reported_and_the_rest_indexed(
    tmp_path: Path, store: ConversationStore
) -> None:
    (tmp_path / "good.md").write_text("Basil likes sun.")
    (tmp_path / "bad.md").write_bytes(b"\xff\xfe\xfa")
    report = await Knowledge(store).sync(
        [knowing("good.md", "bad.md", "missing.md")],
        tmp_path,
        lambda _: words,
    )
    assert report.indexed == ["chef:good.md"]
    assert len(report.failed) == 2
    assert any("bad.md: not UTF-8 text" in line for line in report.failed)
    assert "chef: missing.md: no such file or folder" in report.failed
    assert "1 indexed" in report.line()


# a turn -------------------------------------------------------------------------------------


def knowledge_message(request: RecordedRequest) -> str:
    for message in request.messages:
        content = str(message.get("content"))
        if message.get("role") == "system" and content.startswith(KNOWLEDGE_HEADING):
            return content
    return ""


async def test_a_relevant_passage_reaches_the_prompt_and_is_recorded(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine: Engine = make_engine(agents_file(chef(), plain(), default="chef"))
    chef_agent = engine.agents.default
    await engine.knowledge.put(
        chef_agent,
        "kitchen.md",
        b"Risotto needs Carnaroli rice.\n\nTiramisu needs mascarpone.",
        source="upload",
        count=words,
    )
    key = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0")
    result = await engine.reply(
        IncomingMessage(key=key, text="How do I make risotto?", author_id="U1", author_name="Ada")
    ).result()
    block = knowledge_message(fake_openai.chat_requests()[-1])
    assert "[kitchen.md]" in block
    assert "Carnaroli" in block
    assert len(result.reply.sources) == 1
    (given,) = await engine.store.get_chunks(ids=list(result.reply.sources))
    assert "Carnaroli" in given.text

    other = PlatformKey(platform="slack", workspace="T1", channel="C2", thread="2.0")
    await engine.reply(
        IncomingMessage(key=other, text="risotto?", author_name="Ada", agent_id="plain")
    ).result()
    assert knowledge_message(fake_openai.chat_requests()[-1]) == "", "not another agent's"

    unrelated = await engine.reply(
        IncomingMessage(key=key, text="Hello there", author_name="Ada")
    ).result()
    assert knowledge_message(fake_openai.chat_requests()[-1]) == ""
    assert unrelated.reply.sources == ()


async def test_passages_stay_within_the_agents_budget(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine: Engine = make_engine(agents_file(chef(knowledge_tokens=120)))
    agent = engine.agents.default
    for n in range(10):
        text = f"Pasta note {n}: " + "semolina flour and water " * 8
        await engine.knowledge.put(
            agent,
            f"note{n}.md",
            text.encode(),
            source="upload",
            count=lambda text: engine.count_tokens(text, agent),
        )
    key = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0")
    result = await engine.reply(
        IncomingMessage(key=key, text="semolina pasta?", author_name="Ada")
    ).result()
    block = knowledge_message(fake_openai.chat_requests()[-1])
    assert 0 < len(result.reply.sources) < 10
    assert engine.count_tokens(block, engine.agents.default) <= 120
