"""Goal checks every minute for several agents never stall the one event loop (#14).

Slack's 3-second acknowledgement, Discord's heartbeats and ``/healthz`` share the loop with
the scheduler, so a run must never hold it: the loop-lag monitor and ``/healthz`` asked from
another thread (which a stalled loop cannot answer) both stay under 100 ms through the runs.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bot.engine import IncomingMessage
from bot.looplag import LoopLagMonitor
from bot.scheduler import GoalCheckRunner, GoalScheduler, RunReport
from config.agents import Agent
from memory.base import PlatformKey
from tests.support.agents import agents_file, chef
from tests.support.api import ApiFactory

AGENTS = 3
EVERY_MINUTE = {"cron": "* * * * *", "post_to": "thread"}
LIMIT = 0.1


class HealthPoller(threading.Thread):
    """Asks ``/healthz`` over one keep-alive connection until stopped; records how long each
    answer took."""

    def __init__(self, base_url: str) -> None:
        super().__init__(name="healthz-poller", daemon=True)
        address = urlsplit(base_url)
        assert address.hostname is not None
        assert address.port is not None
        self._host, self._port = address.hostname, address.port
        self.took: list[float] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self._answered = threading.Condition()

    def run(self) -> None:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=120)
        try:
            while not self.stopping.is_set():
                started = time.perf_counter()
                try:
                    connection.request("GET", "/healthz")
                    response = connection.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    self._record(failure=repr(exc))
                    return
                failure = None if response.status == 200 and b'"ok"' in body else body.decode()
                self._record(took=time.perf_counter() - started, failure=failure)
                self.stopping.wait(0.02)
        finally:
            connection.close()

    def _record(self, *, took: float | None = None, failure: str | None = None) -> None:
        with self._answered:
            if took is not None:
                self.took.append(took)
            if failure is not None:
                self.failures.append(failure)
            self._answered.notify_all()

    async def answers(self, count: int) -> None:
        """Wait (in a thread: the loop stays free) until ``count`` answers have come in."""

        def wait() -> bool:
            with self._answered:
                return self._answered.wait_for(
                    lambda: len(self.took) >= count or bool(self.failures), timeout=300
                )

        assert await asyncio.to_thread(wait), "no answers from /healthz"


class SignallingRunner(GoalCheckRunner):
    """The real runner; it keeps each run's report for the test and says when all are in."""

    reports: list[RunReport]
    all_done: asyncio.Event

    async def run(
        self, agent: Agent, *, slot: datetime | None = None, claim_run: bool = True
    ) -> RunReport:
        report = await super().run(agent, slot=slot, claim_run=claim_run)
        self.reports.append(report)
        if len(self.reports) == AGENTS:
            self.all_done.set()
        return report


async def test_per_minute_goal_checks_keep_the_loop_and_healthz_under_100_ms(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(
        agents=agents_file(*(chef(id=f"agent{n}", goal_check=EVERY_MINUTE) for n in range(AGENTS)))
    )
    engine = api.engine
    # a conversation to check (this also loads the token counter before measuring)
    await engine.reply(
        IncomingMessage(
            key=PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0"),
            text="I have chosen the paella",
            author_name="Ada",
        )
    ).result()
    poller = HealthPoller(await api.serve())
    runner = SignallingRunner(engine=engine, posters={})
    runner.reports, runner.all_done = [], asyncio.Event()
    scheduler = GoalScheduler(runner=runner, agents=list(engine.agents.agents))

    poller.start()
    try:
        await poller.answers(3)
        warm_up = len(poller.took)
        async with LoopLagMonitor(interval=0.02, keep=100_000) as monitor:
            await scheduler.start()  # each agent's run starts at once: the missed slot
            try:
                await asyncio.wait_for(runner.all_done.wait(), timeout=300)
            finally:
                await scheduler.stop()
            # a request that a stall held is answered and counted before judging
            await poller.answers(len(poller.took) + 2)
    finally:
        poller.stopping.set()
        await asyncio.to_thread(poller.join, 30)

    now = datetime.now(UTC)
    assert sorted(r.agent_id for r in runner.reports) == [f"agent{n}" for n in range(AGENTS)]
    assert all(now - timedelta(minutes=10) < r.slot <= now for r in runner.reports)
    assert all(r.slot.second == r.slot.microsecond == 0 for r in runner.reports)
    assert sum(len(r.checked) for r in runner.reports) == 1
    assert poller.failures == []
    during = poller.took[warm_up:]
    assert len(during) >= 2
    assert monitor.measurements >= 1
    assert monitor.worst_recent() < LIMIT, f"the loop ran {monitor.worst_recent():.3f} s late"
    assert max(during) < LIMIT, f"/healthz took {max(during):.3f} s"
