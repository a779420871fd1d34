"""Engines for tests: the real engine over a real store and the real OpenAI client, pointed
at the fake OpenAI server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.embeddings import Embedder
from bot.engine import Engine
from bot.llm import OpenAIModelClient
from bot.tokens import TokenCounter
from bot.usage import UsageLedger, UsageRecorder
from config.agents import AgentsFile
from config.pricing import NO_PRICES, Prices
from memory.base import ConversationStore
from memory.sqlite import SqliteStore
from tests.support.agents import agents_file, chef
from tests.support.fake_openai import FakeOpenAI

EngineFactory = Callable[..., Engine]


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[ConversationStore]:
    store = SqliteStore(path=tmp_path / "engine.sqlite3")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def tokens() -> TokenCounter:
    return TokenCounter()


@pytest.fixture
async def make_engine(
    fake_openai: FakeOpenAI, sqlite_store: ConversationStore, tokens: TokenCounter
) -> AsyncIterator[EngineFactory]:
    made: list[tuple[Engine, OpenAIModelClient, UsageRecorder | None]] = []

    def factory(
        agents: AgentsFile | None = None,
        *,
        store: ConversationStore | None = None,
        max_retries: int = 0,
        timeout: float = 5.0,
        max_pending_turns: int = 10_000,
        api_turn_share: float = 0.5,
        consolidation_settle: float = 0.05,
        embedder: Embedder | None = None,
        usage: bool = False,
        prices: Prices = NO_PRICES,
        usage_buffer: int = 10_000,
    ) -> Engine:
        """``usage``: the model client records usage (``engine.usage`` reports it)."""
        kept = store or sqlite_store
        recorder = (
            UsageRecorder(store=kept, count=tokens.count, limit=usage_buffer) if usage else None
        )
        model = OpenAIModelClient(
            api_key="test-key",
            base_url=fake_openai.base_url,
            timeout=timeout,
            max_retries=max_retries,
            usage=recorder,
        )
        engine = Engine(
            store=kept,
            agents=agents or agents_file(chef()),
            model=model,
            tokens=tokens,
            default_model="gpt-4o-mini",
            max_pending_turns=max_pending_turns,
            api_turn_share=api_turn_share,
            consolidation_settle=consolidation_settle,
            embedder=embedder,
            usage=UsageLedger(store=kept, prices=prices, recorder=recorder),
        )
        made.append((engine, model, recorder))
        return engine

    yield factory
    for engine, model, recorder in made:
        await engine.aclose()
        await model.close()
        if recorder is not None:
            await recorder.aclose()
