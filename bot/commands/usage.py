"""``/agent usage``: what the agent here used, for admins: today (UTC) against its daily
budget, the last 30 days, and the conversation here, each with its cost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.usage import CostedTotal, UsageLedger, calls, format_cost, utc_midnight
from config.agents import Agent
from memory.base import Conversation, UsageQuery, utc_now

MONTH_DAYS = 30


class AgentUsage:
    """The usage lines of one agent."""

    def __init__(self, ledger: UsageLedger, clock: Callable[[], datetime] = utc_now) -> None:
        self._ledger = ledger
        self._clock = clock

    async def run(self, agent: Agent, conversation: Conversation | None) -> str:
        await self._ledger.flush()
        today = utc_midnight(self._clock())
        day = await self._total(UsageQuery(agent_id=agent.id, since=today))
        month = await self._total(
            UsageQuery(agent_id=agent.id, since=today - timedelta(days=MONTH_DAYS - 1))
        )
        currency = self._ledger.prices.currency
        lines = [f"**{agent.name}** used today (UTC): {_amounts(day, currency)}."]
        budget = agent.daily_token_budget
        if budget is not None:
            share = day.total.tokens * 100 // budget
            lines.append(f"Daily budget: {budget:,} tokens, {share}% used.")
        lines.append(f"Last {MONTH_DAYS} days: {_amounts(month, currency)}.")
        if conversation is not None:
            here = await self._total(UsageQuery(conversation_id=conversation.id))
            lines.append(f"This conversation: {_amounts(here, currency)}.")
        return "\n".join(lines)

    async def _total(self, query: UsageQuery) -> CostedTotal:
        return (await self._ledger.report(query)).total


def _amounts(row: CostedTotal, currency: str) -> str:
    t = row.total
    text = f"{t.tokens:,} tokens in {calls(t.calls)}, cost {format_cost(row.cost, currency)}"
    if row.unpriced:
        text += f" (no price for {', '.join(row.unpriced)})"
    if t.estimated_calls:
        text += f"; {t.estimated_calls:,} calls estimated"
    return text
