"""The metrics alone, and the engine recording to the registry it is given: each registry is
its own (two bots in one process never share counts), labels stay bounded."""

from __future__ import annotations

import pytest

from bot.engine import EngineBusy, IncomingMessage
from bot.looplag import LoopLagMonitor
from bot.metrics import Metrics
from bot.telemetry import Telemetry
from memory.base import PlatformKey
from tests.support.engines import EngineFactory
from tests.support.metrics import Scrape

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0")


def test_two_metrics_objects_count_apart() -> None:
    one, two = Metrics(), Metrics()
    one.busy_refusal("busy")
    one.busy_refusal("busy")
    two.busy_refusal("busy")

    assert Scrape.of(one).value("parley_busy_refusals_total", reason="busy") == 2
    assert Scrape.of(two).value("parley_busy_refusals_total", reason="busy") == 1


def test_unknown_purposes_and_feedback_values_are_other() -> None:
    metrics = Metrics()
    metrics.model_call(purpose="reply", outcome="ok", seconds=0.5)
    metrics.model_call(purpose="made-up-purpose-42", outcome="ok", seconds=0.5)
    metrics.feedback_given("good")
    metrics.feedback_given("bad")
    metrics.feedback_given("<script>")

    found = Scrape.of(metrics)
    assert found.labels("parley_model_calls_total", "purpose") == {"reply", "other"}
    assert found.value("parley_feedback_total", value="good") == 1
    assert found.value("parley_feedback_total", value="bad") == 1
    assert found.value("parley_feedback_total", value="other") == 1


def test_platform_calls_count_by_status_class_and_429s_apart() -> None:
    metrics = Metrics()
    for status in (200, 200, 404, 429, 503, None):
        metrics.platform_call(platform="slack", method="chat.update", status=status)

    found = Scrape.of(metrics)
    calls = "parley_platform_api_calls_total"
    assert found.value(calls, platform="slack", method="chat.update", status="2xx") == 2
    assert found.value(calls, platform="slack", method="chat.update", status="4xx") == 1
    assert found.value(calls, platform="slack", method="chat.update", status="429") == 1
    assert found.value(calls, platform="slack", method="chat.update", status="5xx") == 1
    assert found.value(calls, platform="slack", method="chat.update", status="error") == 1
    limited = "parley_platform_rate_limited_total"
    assert found.value(limited, platform="slack", method="chat.update") == 1


def test_the_loop_lag_and_the_backlog_are_read_when_rendered() -> None:
    metrics = Metrics()
    monitor = LoopLagMonitor()
    metrics.watch_loop_lag(monitor)
    monitor._record(0.05)
    monitor._record(0.02)
    metrics.set_journal_backlog(7)

    found = Scrape.of(metrics)
    assert found.value("parley_event_loop_lag_seconds") == pytest.approx(0.02)
    assert found.value("parley_event_loop_lag_worst_seconds") == pytest.approx(0.05)
    assert found.value("parley_journal_backlog") == 7


async def test_the_engine_counts_a_refused_turn(make_engine: EngineFactory) -> None:
    telemetry = Telemetry()
    engine = make_engine(max_pending_turns=1, telemetry=telemetry)
    held = engine.admit(IncomingMessage(key=KEY, text="first", author_name="Ada"))

    with pytest.raises(EngineBusy):
        engine.reply(IncomingMessage(key=KEY, text="hello", author_name="Ada"))
    held.release()

    found = Scrape.of(telemetry.metrics)
    assert found.value("parley_busy_refusals_total", reason="busy") == 1
    assert found.total("parley_turns_total") == 0, "a refused turn never started"


async def test_an_engine_turn_is_counted_on_the_telemetry_it_was_given(
    make_engine: EngineFactory,
) -> None:
    telemetry = Telemetry()
    engine = make_engine(telemetry=telemetry)
    other = make_engine()

    turn = engine.reply(IncomingMessage(key=KEY, text="hello", author_name="Ada"))
    result = await turn.result()

    found = Scrape.of(telemetry.metrics)
    assert found.value("parley_turns_total", platform="slack", agent="chef", outcome="ok") == 1
    assert found.value("parley_model_calls_total", purpose="reply", outcome="ok") == 1
    assert result.conversation.id not in telemetry.metrics.render().decode()
    assert Scrape.of(other.telemetry.metrics).total("parley_turns_total") == 0
