"""``/agent usage``, once, for every platform: admins only, the agent here's tokens today
(against its budget), in 30 days and in the conversation here, with their cost."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import pytest

from adapters.terminal import TerminalAdapter, TerminalSession
from bot.commands import PERMISSIONS, AgentCommands, Caller, Command, Refused, Said, parse
from bot.engine import Engine, IncomingMessage
from config.pricing import ModelPrice, Prices
from memory.base import NewUsage, PlatformKey, utc_now
from tests.support.agents import agents_file, chef, plain
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, default_brain

PLACE = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="100.1")
PRICES = Prices(models={"gpt-4o-mini": ModelPrice(input=1.0, output=2.0)})
REPORTED = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}


async def admin() -> bool:
    return True


@pytest.fixture
def engine(make_engine: EngineFactory, fake_openai: FakeOpenAI) -> Engine:
    def answer(request: RecordedRequest) -> Reply:
        return replace(default_brain(request), usage=REPORTED)

    fake_openai.handle(answer)
    return make_engine(
        agents_file(chef(daily_token_budget=10_000), plain()), usage=True, prices=PRICES
    )


def test_only_admins_may_ask_and_it_takes_no_argument() -> None:
    rule = PERMISSIONS["usage"]
    assert (rule.who, rule.needs_conversation, rule.confirm) == ("admins", False, False)
    assert parse("usage") == Command("usage")
    assert parse("usage today") is None


async def test_usage_today_month_and_here_with_cost(engine: Engine) -> None:
    turn = engine.reply(IncomingMessage(key=PLACE, text="Hi", author_id="U1", author_name="Ada"))
    await turn.result()
    old = utc_now() - timedelta(days=10)
    await engine.store.add_usage(
        [
            NewUsage(
                at=old,
                agent_id="chef",
                purpose="summary",
                model="house-llm",
                input_tokens=100,
                output_tokens=0,
            )
        ]
    )
    outcome = await AgentCommands(engine).run(Command("usage"), Caller(PLACE, "U1", is_admin=admin))
    assert isinstance(outcome, Said)
    assert outcome.private
    # 1,000 in at 1.0/M + 500 out at 2.0/M = 0.002
    assert outcome.text.splitlines() == [
        "**Chef** used today (UTC): 1,500 tokens in 1 call, cost 0.0020 USD.",
        "Daily budget: 10,000 tokens, 15% used.",
        "Last 30 days: 1,600 tokens in 2 calls, cost unknown (no price for house-llm).",
        "This conversation: 1,500 tokens in 1 call, cost 0.0020 USD.",
    ]


async def test_others_are_refused(engine: Engine) -> None:
    outcome = await AgentCommands(engine).run(Command("usage"), Caller(PLACE, "U2"))
    assert isinstance(outcome, Refused)


async def test_in_the_terminal_it_is_slash_usage(engine: Engine) -> None:
    session = TerminalSession(engine, name="dinner", author="Ada", admin=True)
    out = io.StringIO()
    adapter = TerminalAdapter(session, stdin=io.StringIO("/usage\n"), stdout=out, interactive=False)
    await adapter.run()
    assert out.getvalue().splitlines() == [
        "**Chef** used today (UTC): 0 tokens in 0 calls, cost 0.0000 USD.",
        "Daily budget: 10,000 tokens, 0% used.",
        "Last 30 days: 0 tokens in 0 calls, cost 0.0000 USD.",
        "This conversation: 0 tokens in 0 calls, cost 0.0000 USD.",
    ]
