"""Token usage end to end: the real OpenAI client reads the fake server's reported usage, the
recorder stores it off the reply path, and reports price it; daily budgets stop the model."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.engine import IncomingMessage
from bot.errors import ConfigError
from bot.llm import ChatRequest
from bot.prompt import ChatMessage
from bot.tokens import TokenCounter
from bot.usage import (
    TokenUsage,
    UsageRecorder,
    format_cost,
    report_lines,
    usage_report,
    utc_midnight,
)
from config.agents import DEFAULT_BUDGET_MESSAGE
from config.pricing import ModelPrice, Prices, load_prices
from memory.base import ConversationStore, NewUsage, PlatformKey, UsageQuery
from tests.support.agents import agents_file, chef, plain
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, default_brain

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="100.1")
PRICES = Prices(models={"gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.60)})
REPORTED = {
    "prompt_tokens": 1000,
    "completion_tokens": 200,
    "total_tokens": 1200,
    "prompt_tokens_details": {"cached_tokens": 400},
}


def said(text: str) -> IncomingMessage:
    return IncomingMessage(key=KEY, text=text, author_id="U1", author_name="Ada")


def reporting(usage: dict[str, object]) -> object:
    """A handler: the default brain's answers, reporting ``usage`` for every call."""

    def answer(request: RecordedRequest) -> Reply:
        return replace(default_brain(request), usage=usage)

    return answer


async def test_usage_and_cost_add_up_to_what_the_model_reported(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.handle(reporting(REPORTED))  # type: ignore[arg-type]
    engine = make_engine(usage=True, prices=PRICES)
    await engine.reply(said("Hi, my name is Bob")).result()
    await engine.reply(said("What can I cook?")).result()
    conversation = await engine.store.find_conversation(key=KEY)
    assert conversation is not None
    await engine.check_goal(conversation.id)
    await engine.usage.flush()

    streamed = [r for r in fake_openai.chat_requests() if r.stream]
    assert len(streamed) == 2
    assert all(r.body["stream_options"] == {"include_usage": True} for r in streamed)
    assert len(fake_openai.chat_requests()) == 3  # two replies and one goal check

    report = await engine.usage.report(UsageQuery(group_by=("purpose",)))
    by_purpose = {row.total.purpose: row for row in report.rows}
    reply, goal = by_purpose["reply"], by_purpose["goal_check"]
    assert (reply.total.calls, reply.total.input_tokens) == (2, 2000)
    assert (reply.total.cached_input_tokens, reply.total.output_tokens) == (800, 400)
    assert reply.total.estimated_calls == 0
    assert (goal.total.calls, goal.total.input_tokens, goal.total.output_tokens) == (1, 1000, 200)
    # by hand, per call: 600 uncached at 0.15/M + 400 cached at 0.075/M + 200 out at 0.60/M
    per_call = (600 * 0.15 + 400 * 0.075 + 200 * 0.60) / 1_000_000
    assert reply.cost == pytest.approx(2 * per_call)
    assert goal.cost == pytest.approx(per_call)
    assert report.total.cost == pytest.approx(3 * per_call)
    assert report.total.total.tokens == 3 * 1200
    assert format_cost(report.total.cost, "USD") == "0.0007 USD"

    [mine] = (
        await engine.usage.report(UsageQuery(conversation_id=conversation.id, group_by=("agent",)))
    ).rows
    assert (mine.total.agent_id, mine.total.calls) == ("chef", 3)


async def test_a_server_without_usage_gets_the_local_count_marked_estimated(
    make_engine: EngineFactory, fake_openai: FakeOpenAI, tokens: TokenCounter
) -> None:
    fake_openai.report_usage = False
    engine = make_engine(agents_file(plain()), usage=True, prices=PRICES)
    result = await engine.reply(said("Hello there")).result()
    await engine.usage.flush()

    request = fake_openai.chat_requests()[-1]
    expected_in = sum(
        tokens.count(str(m.get("content", "")), "gpt-4o-mini") for m in request.messages
    )
    [row] = (await engine.usage.report(UsageQuery())).rows
    assert row.total.estimated_calls == 1
    assert row.total.input_tokens == expected_in
    assert row.total.output_tokens == tokens.count(result.text, "gpt-4o-mini")
    assert row.cost is not None


async def test_a_model_without_a_price_has_an_unknown_cost_never_zero(
    sqlite_store: ConversationStore,
) -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    await sqlite_store.add_usage(
        [
            NewUsage(
                at=now, purpose="reply", model="gpt-4o-mini", input_tokens=10, output_tokens=1
            ),
            NewUsage(at=now, purpose="reply", model="house-llm", input_tokens=5, output_tokens=5),
        ]
    )
    report = await usage_report(sqlite_store, PRICES, UsageQuery(group_by=("model",)))
    costs = {row.total.model: row.cost for row in report.rows}
    assert costs["house-llm"] is None
    assert costs["gpt-4o-mini"] == pytest.approx((10 * 0.15 + 1 * 0.60) / 1_000_000)
    assert report.total.cost is None
    assert report.total.unpriced == ("house-llm",)
    lines = report_lines(report)
    assert lines[-1].startswith("total: 2 calls, 15 in (0 cached), 6 out, cost unknown")
    assert "no price for house-llm" in lines[-1]


async def test_a_full_buffer_drops_records_and_says_so(
    sqlite_store: ConversationStore, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = UsageRecorder(store=sqlite_store, count=lambda text, model: 1, limit=2)
    request = ChatRequest(
        model="m",
        messages=(ChatMessage(role="user", content="hi"),),
        metadata={"agent_id": "chef", "purpose": "reply"},
    )
    with caplog.at_level(logging.WARNING, logger="bot.usage"):
        for _ in range(3):  # synchronously: the writer has not run yet
            recorder.record(request, TokenUsage(input_tokens=5, output_tokens=1), "ok")
    assert recorder.dropped == 1
    assert "usage buffer full" in caplog.text
    await recorder.aclose()
    [total] = await sqlite_store.usage_totals(UsageQuery())
    assert total.calls == 2


async def test_past_its_daily_budget_the_agent_answers_without_the_model(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.handle(reporting(REPORTED))  # type: ignore[arg-type]
    engine = make_engine(agents_file(chef(daily_token_budget=1500)), usage=True)
    first = await engine.reply(said("Hi")).result()
    assert first.text != DEFAULT_BUDGET_MESSAGE  # 1,200 of 1,500 used: still under
    second = await engine.reply(said("And now?")).result()  # 2,400: the next is refused
    assert second.text != DEFAULT_BUDGET_MESSAGE
    asked = len(fake_openai.chat_requests())

    third = await engine.reply(said("One more?")).result()
    assert third.text == DEFAULT_BUDGET_MESSAGE
    assert third.reply.text == DEFAULT_BUDGET_MESSAGE
    assert not third.failed
    assert len(fake_openai.chat_requests()) == asked  # no model call
    await engine.usage.flush()
    [total] = (await engine.usage.report(UsageQuery())).rows
    assert total.total.calls == 2  # the budget line is not usage
    assert await engine.usage.spent_today("chef") == 2400


async def test_an_agent_without_a_budget_is_never_stopped(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.handle(reporting(REPORTED))  # type: ignore[arg-type]
    engine = make_engine(agents_file(chef(budget_message="Enough for today.")), usage=True)
    for text in ("one", "two", "three"):
        result = await engine.reply(said(text)).result()
        assert result.text != "Enough for today."
    assert len([r for r in fake_openai.chat_requests() if r.stream]) == 3


def test_utc_midnight_is_the_start_of_the_utc_day() -> None:
    from datetime import timedelta, timezone

    late = datetime(2026, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30 UTC
    assert utc_midnight(late) == datetime(2026, 5, 2, tzinfo=UTC)


def test_a_prices_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "prices.yaml"
    good.write_text(
        "currency: EUR\nmodels:\n  gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.6}\n"
        "  local: {input: 0, output: 0}\n",
        encoding="utf-8",
    )
    prices = load_prices(good)
    assert prices.currency == "EUR"
    local = prices.of("local")
    assert local is not None
    assert local.cost(input_tokens=10, cached_input_tokens=0, output_tokens=10) == 0.0
    assert prices.of("unknown") is None
    assert load_prices(None).models == {}

    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  gpt-4o-mini: {input: -1, output: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: models.gpt-4o-mini.input: "):
        load_prices(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("models:\n  m: {inptu: 1, output: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"typo\.yaml: .*models\.m\.inptu: Extra inputs"):
        load_prices(typo)
    with pytest.raises(ConfigError, match="file not found"):
        load_prices(tmp_path / "missing.yaml")


async def test_a_store_failure_is_logged_with_what_was_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from memory.sqlite import SqliteStore

    closed = SqliteStore(path=tmp_path / "closed.sqlite3")  # never opened: every write fails
    recorder = UsageRecorder(store=closed, count=lambda text, model: 1)
    request = ChatRequest(model="m", messages=(ChatMessage(role="user", content="hi"),))
    recorder.record(request, None, "ok")
    with caplog.at_level(logging.WARNING, logger="bot.usage"):
        await recorder.aclose()
    assert "1 usage records lost: the store failed" in caplog.text
    assert recorder.buffered == 0
