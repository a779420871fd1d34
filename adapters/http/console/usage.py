"""What the console shows of usage: the tokens used per purpose, with their cost, for one
conversation or one agent (the last 30 days, today against its budget); the cost of goal
checks is shown beside the goal.

Usage is not kept per place, so a key limited to platforms or workspaces sees an agent's
totals nowhere (they would include other places); a conversation's usage it may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.usage import CostedTotal, UsageLedger, calls, format_cost, utc_midnight
from config.agents import Agent
from memory.base import UsageQuery, utc_now

AGENT_DAYS = 30
PURPOSE_LABELS = {
    "reply": "replies",
    "summary": "summaries",
    "goal_check": "goal checks",
    "memory": "memory",
    "other": "other",
}


@dataclass(frozen=True, slots=True)
class UsageLine:
    label: str
    calls: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost: str
    estimated: int
    unpriced: str

    @classmethod
    def of(cls, label: str, row: CostedTotal, currency: str) -> UsageLine:
        t = row.total
        return cls(
            label=label,
            calls=calls(t.calls),
            input_tokens=t.input_tokens,
            cached_input_tokens=t.cached_input_tokens,
            output_tokens=t.output_tokens,
            cost=format_cost(row.cost, currency),
            estimated=t.estimated_calls,
            unpriced=", ".join(row.unpriced),
        )

    @property
    def short(self) -> str:
        """``3 calls, 0.0012 USD``: beside a goal."""
        return f"{self.calls}, {self.cost}"


@dataclass(frozen=True, slots=True)
class UsageView:
    rows: tuple[UsageLine, ...]
    """Per purpose."""
    total: UsageLine
    goal_checks: UsageLine | None
    today: UsageLine | None = None
    budget: int | None = None
    budget_used: int | None = None
    """Percent of the daily budget used today."""


async def usage_view(ledger: UsageLedger, query: UsageQuery) -> UsageView:
    report = await ledger.report(query.model_copy(update={"group_by": ("purpose",)}))
    currency = report.currency
    rows = tuple(
        UsageLine.of(PURPOSE_LABELS.get(r.total.purpose or "", r.total.purpose or ""), r, currency)
        for r in report.rows
    )
    goal = next((r for r in report.rows if r.total.purpose == "goal_check"), None)
    return UsageView(
        rows=rows,
        total=UsageLine.of("total", report.total, currency),
        goal_checks=UsageLine.of("goal checks", goal, currency) if goal is not None else None,
    )


async def conversation_usage(ledger: UsageLedger, conversation_id: str) -> UsageView:
    await ledger.flush()
    return await usage_view(ledger, UsageQuery(conversation_id=conversation_id))


async def agent_usage(ledger: UsageLedger, agent: Agent) -> UsageView:
    """The last :data:`AGENT_DAYS` days (UTC), and today against the daily budget."""
    today = utc_midnight(utc_now())
    since = today - timedelta(days=AGENT_DAYS - 1)
    view = await usage_view(ledger, UsageQuery(agent_id=agent.id, since=since))
    day = await ledger.report(UsageQuery(agent_id=agent.id, since=today))
    budget = agent.daily_token_budget
    used = day.total.total.tokens * 100 // budget if budget is not None else None
    return UsageView(
        rows=view.rows,
        total=view.total,
        goal_checks=view.goal_checks,
        today=UsageLine.of("today", day.total, day.currency),
        budget=budget,
        budget_used=used,
    )
