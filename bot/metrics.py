"""Prometheus metrics: every metric Parley exports, defined once, on a registry of its own.

A :class:`Metrics` owns its ``CollectorRegistry`` (never the process-wide default), so tests
and two bots in one process each count their own. It is handed through constructors (the
engine carries it in its :class:`bot.telemetry.Telemetry`); ``GET /metrics`` renders it.

Labels stay bounded: platforms, agents, purposes, outcomes, store operations and platform API
methods, never conversation ids or people. Values from outside a known set are counted as
``other``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE", "PURPOSES", "LagSource", "Metrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
PURPOSES: Final = frozenset({"reply", "summary", "goal_check", "repair", "memory"})
"""Why a model is called (``ChatRequest.metadata["purpose"]``); anything else is ``other``."""
FEEDBACK: Final = frozenset({"good", "bad"})
"""The ratings of the feedback buttons (``memory.base.Rating``)."""

_TURN_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120)
_FIRST_TEXT_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 30)
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class LagSource(Protocol):
    """What the metrics read of the event-loop lag monitor (:mod:`bot.looplag`)."""

    def current(self) -> float: ...

    def worst_recent(self) -> float: ...


def _known(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


class Metrics:
    """Parley's metrics on one registry; the methods are what the code records."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.turns = Counter(
            "parley_turns",
            "Turns ended, by platform, agent and outcome "
            "(ok, model_failed, closed, error, cancelled).",
            ["platform", "agent", "outcome"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "parley_turn_duration_seconds",
            "From a turn being asked for (waiting for its conversation included) to its end.",
            ["platform", "agent"],
            buckets=_TURN_BUCKETS,
            registry=r,
        )
        self.first_text_seconds = Histogram(
            "parley_turn_first_text_seconds",
            "From a turn being asked for to the first text people can see.",
            ["platform", "agent"],
            buckets=_FIRST_TEXT_BUCKETS,
            registry=r,
        )
        self.model_calls = Counter(
            "parley_model_calls",
            "Model calls by purpose (reply, summary, goal_check, repair, memory) and outcome "
            "(ok, error, format_rejected, cancelled).",
            ["purpose", "outcome"],
            registry=r,
        )
        self.model_seconds = Histogram(
            "parley_model_call_duration_seconds",
            "Model calls from the request to the last piece of the answer.",
            ["purpose"],
            buckets=_TURN_BUCKETS,
            registry=r,
        )
        self.structured_fallbacks = Counter(
            "parley_structured_fallbacks",
            "Structured-output formats a server refused (the next format was tried).",
            ["mode"],
            registry=r,
        )
        self.structured_repairs = Counter(
            "parley_structured_repairs",
            "Invalid JSON replies sent back for one repair, by outcome (repaired, failed).",
            ["outcome"],
            registry=r,
        )
        self.busy_refusals = Counter(
            "parley_busy_refusals",
            "Turns refused for want of room, by reason (busy, too_many_turns, "
            "conversation_busy, api_share).",
            ["reason"],
            registry=r,
        )
        self.platform_calls = Counter(
            "parley_platform_api_calls",
            "HTTP calls to the platforms' APIs by platform, method and status class "
            "(2xx, 4xx, 429, 5xx, error).",
            ["platform", "method", "status"],
            registry=r,
        )
        self.platform_rate_limited = Counter(
            "parley_platform_rate_limited",
            "429 answers from the platforms' APIs, by platform and method.",
            ["platform", "method"],
            registry=r,
        )
        self.store_seconds = Histogram(
            "parley_store_operation_duration_seconds",
            "Store operations by operation (the store's method).",
            ["operation"],
            buckets=_STORE_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "parley_store_operation_errors",
            "Store operations that raised, by operation.",
            ["operation"],
            registry=r,
        )
        self.journal_backlog = Gauge(
            "parley_journal_backlog",
            "Journal entries not finished yet (all processes sharing the store), as of the "
            "last scrape; NaN when the store could not count them in time.",
            registry=r,
        )
        self.adapter_connected = Gauge(
            "parley_adapter_connected",
            "1 when the platform adapter is connected (or serving HTTP mode), else 0.",
            ["adapter"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "parley_event_loop_lag_seconds",
            "How late the event loop ran at the latest measurement.",
            registry=r,
        )
        self.loop_lag_worst = Gauge(
            "parley_event_loop_lag_worst_seconds",
            "The largest event-loop lag of the last minute or so.",
            registry=r,
        )
        self.feedback = Counter(
            "parley_feedback",
            "Feedback people gave on replies, by value (up, down, other).",
            ["value"],
            registry=r,
        )

    # what the code records ----------------------------------------------------------------

    def turn_ended(
        self,
        *,
        platform: str,
        agent: str,
        outcome: str,
        seconds: float,
        first_text: float | None,
    ) -> None:
        self.turns.labels(platform, agent, outcome).inc()
        self.turn_seconds.labels(platform, agent).observe(seconds)
        if first_text is not None:
            self.first_text_seconds.labels(platform, agent).observe(first_text)

    def model_call(self, *, purpose: str, outcome: str, seconds: float) -> None:
        purpose = _known(purpose, PURPOSES)
        self.model_calls.labels(purpose, outcome).inc()
        self.model_seconds.labels(purpose).observe(seconds)

    def structured_fallback(self, mode: str) -> None:
        self.structured_fallbacks.labels(mode).inc()

    def structured_repair(self, *, repaired: bool) -> None:
        self.structured_repairs.labels("repaired" if repaired else "failed").inc()

    def busy_refusal(self, reason: str) -> None:
        self.busy_refusals.labels(reason).inc()

    def platform_call(self, *, platform: str, method: str, status: int | None) -> None:
        """One HTTP exchange with a platform's API; ``status`` None when no answer came."""
        if status is None:
            kind = "error"
        elif status == 429:
            kind = "429"
            self.platform_rate_limited.labels(platform, method).inc()
        else:
            kind = f"{status // 100}xx"
        self.platform_calls.labels(platform, method, kind).inc()

    def store_operation(self, operation: str, seconds: float, *, failed: bool) -> None:
        self.store_seconds.labels(operation).observe(seconds)
        if failed:
            self.store_errors.labels(operation).inc()

    def feedback_given(self, value: str) -> None:
        """Count one new or changed rating of a reply (``good`` or ``bad``; else ``other``)."""
        self.feedback.labels(_known(value, FEEDBACK)).inc()

    # what is read when scraped ------------------------------------------------------------

    def watch_loop_lag(self, monitor: LagSource) -> None:
        """Read the event-loop lag from ``monitor`` at every scrape."""
        self.loop_lag.set_function(monitor.current)
        self.loop_lag_worst.set_function(monitor.worst_recent)

    def set_adapters(self, adapters: Iterable[tuple[str, bool]]) -> None:
        """Each platform adapter's name and whether it is ready (see ``/readyz``)."""
        for name, ready in adapters:
            self.adapter_connected.labels(name).set(1 if ready else 0)

    def set_journal_backlog(self, entries: int | None) -> None:
        """The journal's unfinished entries; None (not counted in time) is NaN."""
        if entries is None:
            self.journal_backlog.set(float("nan"))
        else:
            self.journal_backlog.set(entries)

    def render(self) -> bytes:
        """The registry in Prometheus' text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
