"""Scheduled goal checks: each agent's ``goal_check`` schedule, exactly once across processes.

Every run belongs to a time slot (the schedule's latest fire time). A process claims the
(agent, slot) in the store before it starts and each (conversation, slot) before it checks
one, so several processes sharing a store check and post each conversation once per slot. A
process that dies leaves claims that expire; the conversation is still due, so the next slot
picks it up. Checks whose posting failed are posted on the next run without checking again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TextIO, runtime_checkable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import undefined

from bot.engine import Engine
from bot.logs import context_of
from config.agents import Agent, GoalCheckSpec, crontab_fields
from memory.base import Clock, Conversation, GoalCheck, utc_now

logger = logging.getLogger(__name__)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""Interval schedules count from here, so every process computes the same slots."""
_BATCH = 100
_CONVERSATION_CLAIM_SECONDS = 600.0


@runtime_checkable
class GoalCheckPoster(Protocol):
    """A platform that can show a goal check: Slack (blocks), Discord (an embed)."""

    async def post_goal_check(
        self, conversation: Conversation, check: GoalCheck, agent: Agent, *, channel: str | None
    ) -> None:
        """Post into the conversation's own thread or channel, or into ``channel``."""
        ...

    async def channel_workspace(self, channel: str) -> str | None:
        """The workspace (Slack team, Discord guild) a report channel belongs to; None when
        it is unknown or belongs to none."""
        ...


def report_channel_takes(
    conversation: Conversation, *, platform: str, workspace: str | None
) -> bool:
    """Whether a report channel on ``platform`` in ``workspace`` may show this conversation's
    goal checks: only conversations of the same platform and workspace, never direct messages,
    so that a report channel never shows another tenant's (or a private) conversation."""
    key = conversation.key
    return (
        workspace is not None
        and key.platform == platform
        and key.workspace == workspace
        and not key.is_direct
    )


@dataclass
class RunReport:
    agent_id: str
    slot: datetime
    claimed: bool = True
    checked: list[GoalCheck] = field(default_factory=list)
    posted: int = 0
    failed_posts: int = 0
    skipped: int = 0


def crontab_trigger(expression: str, timezone: str) -> CronTrigger:
    """A trigger for a standard five-field crontab expression, read as cron reads it."""
    fields = crontab_fields(expression)
    return CronTrigger(
        minute=fields.minute,
        hour=fields.hour,
        day=fields.day,
        month=fields.month,
        day_of_week=fields.day_of_week,
        timezone=ZoneInfo(timezone),
    )


def trigger_for(spec: GoalCheckSpec) -> BaseTrigger:
    if spec.cron is not None:
        return crontab_trigger(spec.cron, spec.timezone)
    assert spec.every is not None  # noqa: S101 - the agents file guarantees one of the two
    return IntervalTrigger(
        seconds=spec.every.total_seconds(), start_date=EPOCH, timezone=ZoneInfo(spec.timezone)
    )


def latest_slot(spec: GoalCheckSpec, now: datetime) -> datetime:
    """The schedule's most recent fire time at or before ``now`` (the run's slot).

    A cron schedule looks back at most a year: one that has not fired in the past 366 days
    gets the start of that year as its slot.
    """
    if spec.every is not None:
        period = spec.every.total_seconds()
        elapsed = (now - EPOCH).total_seconds()
        return EPOCH + timedelta(seconds=(elapsed // period) * period)
    return latest_fire_time(trigger_for(spec), now)


_HORIZON = timedelta(days=366)
_WINDOWS = (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1), timedelta(days=32))
_SECOND = timedelta(seconds=1)


def latest_fire_time(trigger: BaseTrigger, now: datetime) -> datetime:
    """The trigger's latest fire time in ``[now - 366 days, now]`` (or that start, if none).

    This runs on the event loop, so it never walks the fire times (a per-minute cron has
    527,040 a year). The trigger answers "the first fire time at or after t"; that answer
    is at or before ``now`` for every t up to the last fire time before ``now`` and for none
    after it. The smallest of a few windows back from ``now`` that holds a fire time
    brackets that t, and halving the bracket to the second finds it: at most 31 questions
    to the trigger, about a millisecond, whatever the schedule.
    """
    now = now.astimezone(UTC)
    start = now - _HORIZON

    def fires_by_now(t: datetime) -> bool:
        first: datetime | None = trigger.get_next_fire_time(None, t)
        return first is not None and first <= now

    if not fires_by_now(start):
        return start
    earlier, later = start, now + _SECOND
    for window in _WINDOWS:
        if fires_by_now(now - window):
            earlier = now - window
            break
        later = now - window
    # fires_by_now(earlier + low seconds) holds, fires_by_now(earlier + high seconds) does not
    low, high = 0, math.ceil((later - earlier) / _SECOND)
    while high - low > 1:
        middle = (low + high) // 2
        if fires_by_now(earlier + middle * _SECOND):
            low = middle
        else:
            high = middle
    found: datetime | None = trigger.get_next_fire_time(None, earlier + low * _SECOND)
    assert found is not None  # noqa: S101 - fires_by_now held for this very time
    return found.astimezone(UTC)


def slot_seconds(spec: GoalCheckSpec) -> float:
    """How long an (agent, slot) claim lives: one period for ``every``, an hour for cron."""
    return spec.every.total_seconds() if spec.every is not None else 3600.0


class PrintingPoster:
    """Prints goal checks instead of posting them (``summarize --dry-run``)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    async def post_goal_check(
        self, conversation: Conversation, check: GoalCheck, agent: Agent, *, channel: str | None
    ) -> None:
        key = conversation.key
        place = "/".join(
            part for part in (key.platform, key.workspace, key.channel, key.thread) if part
        )
        target = f" -> {channel}" if channel else ""
        state = "reached" if check.reached else "not reached yet"
        lines = [f"{agent.id} · {conversation.id} · {place}{target}: goal {state}"]
        if check.summary:
            lines.append(f"  summary: {check.summary}")
        if check.missing:
            lines.append("  missing: " + "; ".join(check.missing))
        self._out.write("\n".join(lines) + "\n")

    async def channel_workspace(self, channel: str) -> str | None:
        """Unknown without a platform connection: a dry run shows each check in its own place."""
        return None


class GoalCheckRunner:
    """One run of an agent's goal checks; the scheduler and ``summarize --now`` both use it."""

    def __init__(
        self,
        *,
        engine: Engine,
        posters: Mapping[str, GoalCheckPoster],
        clock: Clock = utc_now,
        owner: str | None = None,
        concurrency: int = 4,
        mark_posted: bool = True,
    ) -> None:
        self._engine = engine
        self._store = engine.store
        self._posters = posters
        self._clock = clock
        self.owner = owner or uuid.uuid4().hex
        self._concurrency = concurrency
        self._mark_posted = mark_posted

    async def run(
        self, agent: Agent, *, slot: datetime | None = None, claim_run: bool = True
    ) -> RunReport:
        """Check the agent's conversations that changed since their last check, and post.

        ``claim_run=False`` (a manual run) skips the (agent, slot) claim; each conversation
        is still claimed, so a manual run never duplicates a scheduled one's work.
        """
        spec = agent.goal_check
        if slot is None:
            now = self._clock()
            slot = latest_slot(spec, now) if spec else now.replace(second=0, microsecond=0)
        report = RunReport(agent_id=agent.id, slot=slot)
        run_key = f"goal-run:{agent.id}:{slot.isoformat()}"
        if claim_run and not await self._store.claim(
            key=run_key, owner=self.owner, ttl_seconds=slot_seconds(spec) if spec else 3600.0
        ):
            report.claimed = False
            logger.info(
                "goal checks for %s at %s: another process has this slot",
                agent.id,
                slot.isoformat(),
                extra={"agent_id": agent.id},
            )
            return report
        await self._post_pending(agent, report)
        gate = asyncio.Semaphore(self._concurrency)
        seen: set[str] = set()
        while True:
            due = [
                c
                for c in await self._store.conversations_due_for_goal_check(
                    agent_id=agent.id, limit=_BATCH
                )
                if c.id not in seen
            ]
            if not due:
                break
            seen.update(c.id for c in due)
            await asyncio.gather(*(self._one(agent, c, slot, gate, report) for c in due))
        logger.info(
            "goal checks for %s at %s: %d checked, %d posted, %d posts failed",
            agent.id,
            slot.isoformat(),
            len(report.checked),
            report.posted,
            report.failed_posts,
            extra={"agent_id": agent.id},
        )
        return report

    async def _one(
        self,
        agent: Agent,
        conversation: Conversation,
        slot: datetime,
        gate: asyncio.Semaphore,
        report: RunReport,
    ) -> None:
        key = f"goal-check:{conversation.id}:{slot.isoformat()}"
        async with gate:
            if not await self._store.claim(
                key=key, owner=self.owner, ttl_seconds=_CONVERSATION_CLAIM_SECONDS
            ):
                report.skipped += 1
                return
            try:
                check = await self._engine.check_goal(conversation.id)
            except Exception:
                logger.exception("goal check failed", extra=context_of(conversation))
                return
            report.checked.append(check)
            if check.error is None:
                await self._post(agent, conversation, check, report)

    async def _post_pending(self, agent: Agent, report: RunReport) -> None:
        for check in await self._store.goal_checks_to_post(agent_id=agent.id, limit=_BATCH):
            conversation = await self._store.get_conversation(conversation_id=check.conversation_id)
            if conversation is not None:
                await self._post(agent, conversation, check, report)

    async def _post(
        self, agent: Agent, conversation: Conversation, check: GoalCheck, report: RunReport
    ) -> None:
        platform, channel = await self._target(agent, conversation)
        poster = self._posters.get(platform)
        if poster is None:
            logger.debug("no %s poster; the check stays stored only", platform)
            if self._mark_posted:
                await self._store.mark_goal_check_posted(check_id=check.id)
            return
        try:
            await poster.post_goal_check(conversation, check, agent, channel=channel)
        except Exception:
            report.failed_posts += 1
            logger.exception(
                "posting a goal check failed; it is retried on the next run",
                extra=context_of(conversation),
            )
            return
        if self._mark_posted:
            await self._store.mark_goal_check_posted(check_id=check.id)
        report.posted += 1

    async def _target(self, agent: Agent, conversation: Conversation) -> tuple[str, str | None]:
        """Where a check is shown: (platform, report channel), or the conversation's own
        (platform, None) when there is no report channel or it may not show this one."""
        spec = agent.goal_check
        own = (conversation.key.platform, None)
        if spec is None or spec.post_to == "thread":
            return own
        platform, channel = spec.post_to.split(":", 1)
        poster = self._posters.get(platform)
        if poster is None:
            return own
        try:
            workspace = await poster.channel_workspace(channel)
        except Exception:
            logger.exception(
                "could not tell the report channel's workspace", extra=context_of(conversation)
            )
            workspace = None
        if report_channel_takes(conversation, platform=platform, workspace=workspace):
            return platform, channel
        logger.debug(
            "goal check kept out of another tenant's report channel", extra=context_of(conversation)
        )
        return own


class GoalScheduler:
    """APScheduler jobs, one per agent with a ``goal_check``, running :class:`GoalCheckRunner`.

    At start each job runs once for the latest slot, so runs missed while the bot was down
    are coalesced into one (a slot already done elsewhere is a claim lost, not a repeat).
    """

    def __init__(
        self,
        *,
        runner: GoalCheckRunner,
        agents: list[Agent],
        clock: Clock = utc_now,
        run_missed_at_start: bool = True,
    ) -> None:
        self._runner = runner
        self._agents = [agent for agent in agents if agent.goal_check is not None]
        self._clock = clock
        self._run_missed = run_missed_at_start
        self._scheduler: AsyncIOScheduler | None = None
        self._runs: dict[str, asyncio.Task[None]] = {}

    @property
    def agent_ids(self) -> list[str]:
        return [agent.id for agent in self._agents]

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        for agent in self._agents:
            self._add_job(scheduler, agent, run_now=self._run_missed)
        scheduler.start()
        self._scheduler = scheduler
        logger.info("goal checks scheduled for %s", ", ".join(self.agent_ids) or "no agent")

    def sync(self, agents: list[Agent]) -> None:
        """Schedule the agents' goal checks as they are now: agents stored through the API
        come and go, and their schedules change. Unchanged agents keep their jobs."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        wanted = {agent.id: agent for agent in agents if agent.goal_check is not None}
        current = {agent.id: agent for agent in self._agents}
        for agent_id, agent in current.items():
            if wanted.get(agent_id) != agent:
                scheduler.remove_job(_job_id(agent_id))
                logger.info("goal checks unscheduled for %s", agent_id)
        for agent_id, agent in wanted.items():
            if current.get(agent_id) != agent:
                self._add_job(scheduler, agent, run_now=False)
                logger.info("goal checks scheduled for %s", agent_id)
        self._agents = list(wanted.values())

    def _add_job(self, scheduler: AsyncIOScheduler, agent: Agent, *, run_now: bool) -> None:
        assert agent.goal_check is not None  # noqa: S101 - callers keep only such agents
        scheduler.add_job(
            self._fire,
            args=(agent,),
            trigger=trigger_for(agent.goal_check),
            id=_job_id(agent.id),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            # None would add the job paused; undefined lets the trigger pick the next time
            next_run_time=self._clock() if run_now else undefined,
        )

    async def stop(self) -> None:
        """Stop firing, cancel runs in progress (their claims expire) and wait for them."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        runs = list(self._runs.values())
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)

    async def _fire(self, agent: Agent) -> None:
        """The job APScheduler runs: start the agent's run as a task of ours and return, so
        a stop can cancel and await it. A run still going when the next slot fires is left
        alone (the next slot's conversations wait for the following one)."""
        if agent.id in self._runs:
            logger.warning("goal checks for %s still running; slot skipped", agent.id)
            return
        run = asyncio.create_task(self._run(agent))
        self._runs[agent.id] = run
        run.add_done_callback(lambda _: self._runs.pop(agent.id, None))

    async def _run(self, agent: Agent) -> None:
        try:
            await self._runner.run(agent)
        except Exception:
            logger.exception("goal check run failed", extra={"agent_id": agent.id})


def _job_id(agent_id: str) -> str:
    return f"goal-check:{agent_id}"
