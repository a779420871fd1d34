"""Scheduled goal checks, run directly with injected times: no waiting on the wall clock."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger

from bot.engine import Engine, IncomingMessage
from bot.scheduler import (
    GoalCheckRunner,
    GoalScheduler,
    crontab_trigger,
    latest_fire_time,
    latest_slot,
    trigger_for,
)
from config.agents import Agent, GoalCheckSpec
from memory.base import Conversation, GoalCheck, NewMessage, PlatformKey
from memory.sqlite import SqliteStore
from tests.support.agents import agents_file, chef, plain
from tests.support.clock import FakeClock
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, default_brain
from tests.support.process import REPO, run_bot
from tests.support.stores import StoreFactory

HOURLY = {"every": "1h", "post_to": "thread"}
SLOT = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass
class Posted:
    conversation_id: str
    check: GoalCheck
    channel: str | None


class RecordingPoster:
    """Stands in for a platform adapter's ``post_goal_check`` (the adapters' own tests post
    through the fake Slack and Discord servers)."""

    def __init__(self, failures: int = 0, *, workspaces: dict[str, str] | None = None) -> None:
        self.posted: list[Posted] = []
        self.failures = failures
        self.workspaces = workspaces or {}
        """Report channel -> its workspace, as the platform would say."""

    async def channel_workspace(self, channel: str) -> str | None:
        return self.workspaces.get(channel)

    async def post_goal_check(
        self, conversation: Conversation, check: GoalCheck, agent: Agent, *, channel: str | None
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("platform down")
        self.posted.append(Posted(conversation.id, check, channel))


def key(n: int, platform: str = "slack") -> PlatformKey:
    return PlatformKey(platform=platform, workspace="T1", channel="C1", thread=f"{n}.0")  # type: ignore[arg-type]


async def talk(
    engine: Engine,
    n: int,
    text: str = "hello",
    platform: str = "slack",
    *,
    at: PlatformKey | None = None,
) -> str:
    result = await engine.reply(
        IncomingMessage(key=at or key(n, platform), text=text, author_name="Ada")
    ).result()
    return result.conversation.id


def goal_requests(fake: FakeOpenAI) -> list[RecordedRequest]:
    return [r for r in fake.chat_requests() if "[parley:goal]" in r.system_text]


async def test_only_conversations_with_new_messages_are_checked_and_posted(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(goal_check=HOURLY), plain()))
    chef_agent = engine.agents.get("chef")
    active = await talk(engine, 1, "I have chosen the paella")
    quiet = await talk(engine, 2)
    poster = RecordingPoster()
    runner = GoalCheckRunner(engine=engine, posters={"slack": poster})

    first = await runner.run(chef_agent, slot=SLOT)
    assert sorted(c.conversation_id for c in first.checked) == sorted([active, quiet])
    assert {p.conversation_id for p in poster.posted} == {active, quiet}
    assert all(p.channel is None for p in poster.posted), "post_to: thread"
    reached = next(p.check for p in poster.posted if p.conversation_id == active)
    assert reached.reached is True

    await talk(engine, 1, "and now the dessert")
    second = await runner.run(chef_agent, slot=SLOT + timedelta(hours=1))
    assert [c.conversation_id for c in second.checked] == [active], "quiet had nothing new"
    stored = await engine.store.list_goal_checks(conversation_id=active)
    assert len(stored) == 2
    assert all(check.posted_at is not None for check in stored)
    third = await runner.run(chef_agent, slot=SLOT + timedelta(hours=2))
    assert third.checked == []


async def test_report_channel(make_engine: EngineFactory) -> None:
    engine = make_engine(
        agents_file(chef(goal_check={"every": "1h", "post_to": "discord:123456789"}))
    )
    guild = PlatformKey(platform="discord", workspace="555", channel="42")
    here = await talk(engine, 1, at=guild)
    slack = RecordingPoster()
    discord = RecordingPoster(workspaces={"123456789": "555"})
    runner = GoalCheckRunner(engine=engine, posters={"slack": slack, "discord": discord})
    await runner.run(engine.agents.default, slot=SLOT)
    assert slack.posted == []
    assert [(p.conversation_id, p.channel) for p in discord.posted] == [(here, "123456789")]


async def test_a_report_channel_shows_only_its_own_tenant(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    """An agent with ``post_to: slack:CREPORT`` (in team T1) is used in several workspaces,
    on several platforms, in DMs and through the API: only T1's channel conversations reach
    the report channel; the rest are shown in their own place, or stay stored."""
    engine = make_engine(agents_file(chef(goal_check={"every": "1h", "post_to": "slack:CREPORT"})))
    places = {
        "t1 thread": PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0"),
        "t1 dm": PlatformKey(platform="slack", workspace="T1", channel="D1", thread="2.0"),
        "t2 thread": PlatformKey(platform="slack", workspace="T2", channel="C9", thread="3.0"),
        "guild": PlatformKey(platform="discord", workspace="T1", channel="77"),
        "discord dm": PlatformKey(platform="discord", workspace="dm", channel="78"),
        "api": PlatformKey(platform="api", channel="a1"),
    }
    ids = {name: await talk(engine, 0, f"secret of {name}", at=at) for name, at in places.items()}
    slack = RecordingPoster(workspaces={"CREPORT": "T1"})
    discord = RecordingPoster(workspaces={"CREPORT": "T1"})
    runner = GoalCheckRunner(engine=engine, posters={"slack": slack, "discord": discord})

    report = await runner.run(engine.agents.default, slot=SLOT)

    assert len(report.checked) == len(places)
    by_id = {p.conversation_id: p.channel for p in slack.posted}
    assert by_id == {ids["t1 thread"]: "CREPORT", ids["t1 dm"]: None, ids["t2 thread"]: None}
    assert {p.conversation_id: p.channel for p in discord.posted} == {
        ids["guild"]: None,
        ids["discord dm"]: None,
    }, "same id as the team, other platform: its own channel"
    api_checks = await engine.store.list_goal_checks(conversation_id=ids["api"])
    assert [c.posted_at is not None for c in api_checks] == [True], "stored, nowhere to post"


async def test_an_unknown_report_channel_keeps_checks_in_their_own_place(
    make_engine: EngineFactory,
) -> None:
    engine = make_engine(agents_file(chef(goal_check={"every": "1h", "post_to": "slack:CGONE"})))
    conversation_id = await talk(engine, 1)
    slack = RecordingPoster()  # the platform cannot say whose channel CGONE is
    await GoalCheckRunner(engine=engine, posters={"slack": slack}).run(
        engine.agents.default, slot=SLOT
    )
    assert [(p.conversation_id, p.channel) for p in slack.posted] == [(conversation_id, None)]


@pytest.mark.parametrize(
    ("place", "direct"),
    [
        (PlatformKey(platform="slack", workspace="T1", channel="D0123ABC"), True),
        (PlatformKey(platform="slack", workspace="T1", channel="C0123ABC"), False),
        (PlatformKey(platform="slack", workspace="T1", channel="G0123ABC"), False),
        (PlatformKey(platform="discord", workspace="dm", channel="1"), True),
        (PlatformKey(platform="discord", workspace="555", channel="1"), False),
        (PlatformKey(platform="api", channel="D1"), False),
    ],
)
def test_direct_messages_are_told_apart(place: PlatformKey, direct: bool) -> None:
    assert place.is_direct is direct


async def test_a_failing_model_for_one_conversation_leaves_the_others_posted(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(goal_check=HOURLY)))
    good = [await talk(engine, n, f"ordinary talk {n}") for n in range(3)]
    poisoned = await talk(engine, 9, "poison pill")

    def brain(request: RecordedRequest) -> Reply:
        if "[parley:goal]" in request.system_text and "poison" in str(request.messages):
            return Reply(status=500, error_message="model crashed")
        return default_brain(request)

    fake_openai.handle(brain)
    poster = RecordingPoster()
    report = await GoalCheckRunner(engine=engine, posters={"slack": poster}).run(
        engine.agents.default, slot=SLOT
    )
    assert sorted(p.conversation_id for p in poster.posted) == sorted(good)
    failed = [c for c in report.checked if c.error]
    assert [c.conversation_id for c in failed] == [poisoned]
    conversation = await engine.store.get_conversation(conversation_id=poisoned)
    assert conversation is not None
    assert conversation.goal_pending, "it is checked again on the next run"


async def test_a_failed_post_is_retried_without_checking_again(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(goal_check=HOURLY)))
    conversation_id = await talk(engine, 1)
    poster = RecordingPoster(failures=1)
    runner = GoalCheckRunner(engine=engine, posters={"slack": poster})
    first = await runner.run(engine.agents.default, slot=SLOT)
    assert first.failed_posts == 1
    assert poster.posted == []
    checks_made = len(goal_requests(fake_openai))

    second = await runner.run(engine.agents.default, slot=SLOT + timedelta(hours=1))
    assert second.posted == 1
    assert second.checked == []
    assert len(goal_requests(fake_openai)) == checks_made, "posted, not checked again"
    assert [p.conversation_id for p in poster.posted] == [conversation_id]


async def test_two_processes_post_once_per_conversation_per_slot(
    store_factory: StoreFactory, make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    """Two runners, each with its own store object on one database (an SQLite file or
    MongoDB on SecantusDB), over 20 slots."""
    agents = agents_file(chef(goal_check=HOURLY))
    one = make_engine(agents, store=await store_factory())
    two = make_engine(agents, store=await store_factory())
    poster = RecordingPoster()
    runners = [
        GoalCheckRunner(engine=engine, posters={"slack": poster}, owner=name)
        for engine, name in ((one, "p1"), (two, "p2"))
    ]
    for slot_number in range(20):
        for n in range(3):
            await talk(one if n % 2 else two, n, f"slot {slot_number} message {n}")
        slot = SLOT + timedelta(hours=slot_number)
        reports = await asyncio.gather(*(r.run(agents.default, slot=slot) for r in runners))
        assert sum(report.claimed for report in reports) == 1, "one process runs the slot"
    assert len(poster.posted) == 20 * 3
    per_slot = {(p.conversation_id, p.check.covered_seq) for p in poster.posted}
    assert len(per_slot) == 60, "no conversation was posted twice for the same messages"


async def test_concurrent_runners_share_conversations_within_one_slot(
    store_factory: StoreFactory, make_engine: EngineFactory
) -> None:
    """Even when both win different agent-slot claims (manual runs), each conversation of a
    slot is checked by one of them only."""
    agents = agents_file(chef(goal_check=HOURLY))
    one = make_engine(agents, store=await store_factory())
    two = make_engine(agents, store=await store_factory())
    for n in range(8):
        await talk(one, n)
    poster = RecordingPoster()
    a = GoalCheckRunner(engine=one, posters={"slack": poster}, owner="a")
    b = GoalCheckRunner(engine=two, posters={"slack": poster}, owner="b")
    first, second = await asyncio.gather(
        a.run(agents.default, slot=SLOT, claim_run=False),
        b.run(agents.default, slot=SLOT, claim_run=False),
    )
    assert first.claimed, "manual runs do not claim the agent's slot"
    assert second.claimed
    assert len(poster.posted) == 8
    assert len(first.checked) + len(second.checked) == 8


async def test_an_expired_claim_is_taken_over(clock_engine: tuple[Engine, FakeClock]) -> None:
    engine, clock = clock_engine
    conversation_id = await talk(engine, 1)
    slot_key = f"goal-check:{conversation_id}:{SLOT.isoformat()}"
    assert await engine.store.claim(key=slot_key, owner="crashed", ttl_seconds=600)
    poster = RecordingPoster()
    runner = GoalCheckRunner(engine=engine, posters={"slack": poster}, clock=clock)
    blocked = await runner.run(engine.agents.default, slot=SLOT)
    assert blocked.skipped == 1
    assert poster.posted == []
    clock.advance(601)
    retried = await runner.run(engine.agents.default, slot=SLOT + timedelta(hours=1))
    assert [p.conversation_id for p in poster.posted] == [conversation_id]
    assert retried.skipped == 0


def test_slots() -> None:
    hourly = GoalCheckSpec(every=timedelta(hours=1))
    now = datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)
    assert latest_slot(hourly, now) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    weekdays = GoalCheckSpec(cron="0 18 * * 1-5", timezone="Europe/Madrid")
    sunday = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert latest_slot(weekdays, sunday) == datetime(2026, 2, 27, 17, tzinfo=UTC)


def walked_slot(spec: GoalCheckSpec, now: datetime) -> datetime:
    """The reference for :func:`latest_slot`: every fire time of the past 366 days, walked
    one by one as ``latest_slot`` once did (but stepping by the instant: stepping by the wall
    clock walked a repeated autumn hour forever). A walk from two days back (or 40) gives the
    same answer whenever a fire time lies in those days, and spares the test half a million
    steps for a per-minute cron; the year-long walk decides the rest."""
    trigger = trigger_for(spec)

    def walk(since: datetime) -> datetime | None:
        previous: datetime | None = None
        candidate = trigger.get_next_fire_time(None, since)
        while candidate is not None and candidate <= now:
            previous = candidate
            candidate = trigger.get_next_fire_time(None, candidate.astimezone(UTC) + SECOND)
        return None if previous is None else previous.astimezone(UTC)

    year_ago = now - timedelta(days=366)
    return (
        walk(now - timedelta(days=2))
        or walk(now - timedelta(days=40))
        or walk(year_ago)
        or year_ago
    )


SECOND = timedelta(seconds=1)
CRON_FIELDS = (
    ("*", "0", "30", "*/15", "5,35", "0-10", "59", "*/7"),
    ("*", "0", "12", "2", "1-3", "*/6", "9-17", "23", "2,14"),
    ("*", "*", "1", "15", "29", "31", "1,15", "28-31", "*/10"),
    ("*", "*", "*", "1", "2", "2,8", "*/3", "10-12", "12"),
    ("*", "*", "*", "1-5", "0", "6,0", "3", "5"),
)
ZONES = (
    "UTC",
    "Europe/Madrid",
    "Europe/London",
    "America/New_York",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
)
"""No clock change; one-hour changes; a half-hour offset (St John's, Kolkata); a 30-minute
change (Lord Howe). Not Pacific/Chatham: where clocks fall back at a 45-minute offset,
APScheduler's walk skips part of the repeated hour, so where the walk starts changes what it
finds; ``latest_slot`` gives a fire time at or before ``now`` there, not always the same."""


def random_slot_cases(seed: int, count: int) -> list[tuple[GoalCheckSpec, datetime]]:
    """Random schedules at random times: anywhere in 2024-2026, within hours of a
    daylight-saving change, or at, just before or just after a fire time."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test cases, not secrets
    cases: list[tuple[GoalCheckSpec, datetime]] = []
    while len(cases) < count:
        minute, hour, day, month, weekday = (rng.choice(field) for field in CRON_FIELDS)
        if day == "31" and month == "2":
            continue  # never fires (the agents file's concern, not the slot's)
        zone = rng.choice(ZONES)
        spec = GoalCheckSpec(cron=f"{minute} {hour} {day} {month} {weekday}", timezone=zone)
        now = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(3 * 366 * 86400), microseconds=rng.randrange(1_000_000)
        )
        kind = rng.random()
        if kind < 0.3:
            now = clock_change_after(now, ZoneInfo(zone)) + timedelta(
                seconds=rng.randrange(-4 * 3600, 4 * 3600)
            )
        elif kind < 0.6:
            fire = trigger_for(spec).get_next_fire_time(None, now)
            if fire is None:
                continue
            now = fire.astimezone(UTC) + timedelta(microseconds=rng.choice((0, -1, 1)))
        cases.append((spec, now))
    return cases


def clock_change_after(now: datetime, zone: ZoneInfo) -> datetime:
    """The zone's next change of UTC offset within a year, to the quarter hour (``now`` if
    there is none)."""
    offset = now.astimezone(zone).utcoffset()
    for day in range(366):
        start = now + timedelta(days=day)
        if (start + timedelta(days=1)).astimezone(zone).utcoffset() == offset:
            continue
        for quarter in range(1, 97):
            moment = start + timedelta(minutes=15 * quarter)
            if moment.astimezone(zone).utcoffset() != offset:
                return moment
    return now


@pytest.mark.parametrize("seed", range(4))
def test_the_slot_is_the_latest_fire_time_a_walk_through_every_one_finds(seed: int) -> None:
    for spec, now in random_slot_cases(seed, 100):
        assert latest_slot(spec, now) == walked_slot(spec, now), (spec.cron, spec.timezone, now)


def test_slots_across_daylight_saving_changes() -> None:
    hourly = GoalCheckSpec(cron="0 * * * *", timezone="Europe/Madrid")
    # 2025-10-26: 03:00 CEST falls back to 02:00 CET, so 02:00 comes twice
    at = [datetime(2025, 10, 26, hour, minute, tzinfo=UTC) for hour, minute in ((0, 30), (1, 30))]
    assert [latest_slot(hourly, now) for now in at] == [
        datetime(2025, 10, 26, 0, tzinfo=UTC),
        datetime(2025, 10, 26, 1, tzinfo=UTC),
    ], "each 02:00 is a slot of its own (the year-long walk used to loop on the second)"
    nightly = GoalCheckSpec(cron="30 2 * * *", timezone="Europe/Madrid")
    # 2025-03-30: 02:00 CET jumps to 03:00 CEST; APScheduler fires at 03:30 CEST instead
    spring = datetime(2025, 3, 30, 3, tzinfo=UTC)
    assert latest_slot(nightly, spring) == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert latest_slot(nightly, spring) == walked_slot(nightly, spring)


def test_a_schedule_that_did_not_fire_for_a_year_has_the_year_start_as_its_slot() -> None:
    leap_mondays = GoalCheckSpec(cron="0 0 29 2 1")  # next: 2044
    now = datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert latest_slot(leap_mondays, now) == now - timedelta(days=366)
    assert latest_slot(leap_mondays, now) == walked_slot(leap_mondays, now)


class CountingTrigger:
    """A trigger that counts the questions it is asked."""

    def __init__(self, inner: BaseTrigger) -> None:
        self.inner = inner
        self.asked = 0

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        self.asked += 1
        answer: datetime | None = self.inner.get_next_fire_time(previous_fire_time, now)
        return answer


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("* * * * *", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
        ("0 * * * *", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
        ("0 0 * * *", datetime(2026, 2, 28, 23, 0, tzinfo=UTC)),
        ("* 0 1 * *", datetime(2026, 2, 28, 23, 59, tzinfo=UTC)),
        ("0 0 1 1 *", datetime(2025, 12, 31, 23, 0, tzinfo=UTC)),
        ("0 0 29 2 1", datetime(2025, 2, 28, 12, 0, 30, 250000, tzinfo=UTC)),
    ],
)
def test_a_slot_takes_a_few_dozen_questions_to_the_trigger_whatever_the_schedule(
    cron: str, expected: datetime
) -> None:
    """The slot used to cost one question per fire time of the past year: 527,040 for a
    per-minute cron, 13 s on the event loop. Now the cost is bounded, whatever the cron."""
    spec = GoalCheckSpec(cron=cron, timezone="Europe/Madrid")
    trigger = CountingTrigger(trigger_for(spec))
    now = datetime(2026, 3, 1, 12, 0, 30, 250000, tzinfo=UTC)
    assert latest_fire_time(trigger, now) == expected
    assert trigger.asked <= 31


async def test_scheduler_runs_a_missed_slot_at_start(make_engine: EngineFactory) -> None:
    engine = make_engine(agents_file(chef(goal_check=HOURLY), plain()))
    conversation_id = await talk(engine, 1)
    posted = asyncio.Event()

    class SignallingPoster(RecordingPoster):
        async def post_goal_check(
            self, conversation: Conversation, check: GoalCheck, agent: Agent, *, channel: str | None
        ) -> None:
            await super().post_goal_check(conversation, check, agent, channel=channel)
            posted.set()

    poster = SignallingPoster()
    scheduler = GoalScheduler(
        runner=GoalCheckRunner(engine=engine, posters={"slack": poster}),
        agents=list(engine.agents.agents),
    )
    assert scheduler.agent_ids == ["chef"]
    await scheduler.start()
    try:
        await asyncio.wait_for(posted.wait(), timeout=20)
    finally:
        await scheduler.stop()
    assert [p.conversation_id for p in poster.posted] == [conversation_id]


@pytest.fixture
async def clock_engine(
    make_engine: EngineFactory, tmp_path: Path
) -> AsyncIterator[tuple[Engine, FakeClock]]:
    clock = FakeClock()
    store = SqliteStore(path=tmp_path / "clocked.sqlite3", clock=clock)
    await store.open()
    yield make_engine(agents_file(chef(goal_check=HOURLY)), store=store), clock
    await store.close()


async def test_summarize_now_dry_run_prints_and_keeps_the_post_for_later(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    store = SqliteStore(path=tmp_path / "data" / "parley.sqlite3")
    await store.open()
    conversation, _ = await store.get_or_create_conversation(key=key(1), agent_id="chef")
    await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role="user", text="I have chosen the gazpacho", author_name="Ada"),
    )
    await store.close()
    model = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-secret-summaries"}

    done = await run_bot(tmp_path, "summarize", "--now", "--dry-run", **model)
    assert done.code == 0, done.err
    assert f"chef · {conversation.id} · slack/T1/C1/1.0: goal reached" in done.out
    assert "chef: 1 checked, 0 failed, 1 printed" in done.out
    assert "tutor: 0 checked" in done.out, "agents with a schedule run; nothing to check there"
    assert "sk-secret-summaries" not in done.out + done.err

    store = SqliteStore(path=tmp_path / "data" / "parley.sqlite3")
    await store.open()
    try:
        checks = await store.list_goal_checks(conversation_id=conversation.id)
        assert len(checks) == 1
        assert checks[0].reached
        assert checks[0].posted_at is None, "a dry run posts nothing, so nothing is marked"
        assert [c.id for c in await store.goal_checks_to_post(agent_id="chef")] == [checks[0].id]
    finally:
        await store.close()

    again = await run_bot(tmp_path, "summarize", "--now", "--agent", "chef", "--dry-run", **model)
    assert "chef: 0 checked, 0 failed, 1 printed" in again.out, "printed again, not re-checked"


async def test_summarize_now_dry_run_prints_every_platforms_checks(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """The terminal's and the API's conversations are checked like Slack's and Discord's, and
    a dry run prints each (it printed nothing for them: they have no platform to post to)."""
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    store = SqliteStore(path=tmp_path / "data" / "parley.sqlite3")
    await store.open()
    places = {
        "slack": PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0"),
        "discord": PlatformKey(platform="discord", workspace="G1", channel="42"),
        "console": PlatformKey(platform="console", channel="dinner"),
        "api": PlatformKey(platform="api", channel="0f" * 16),
    }
    ids = {}
    for platform, place in places.items():
        conversation, _ = await store.get_or_create_conversation(key=place, agent_id="chef")
        await store.append_message(
            conversation_id=conversation.id,
            message=NewMessage(role="user", text="I have chosen the paella", author_name="Ada"),
        )
        ids[platform] = conversation.id
    await store.close()
    model = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-secret-summaries"}

    done = await run_bot(tmp_path, "summarize", "--now", "--agent", "chef", "--dry-run", **model)
    assert done.code == 0, done.err
    assert "chef: 4 checked, 0 failed, 4 printed" in done.out
    assert f"chef · {ids['console']} · console/dinner: goal reached" in done.out
    assert f"chef · {ids['api']} · api/{'0f' * 16}: goal reached" in done.out
    assert f"chef · {ids['discord']} · discord/G1/42: goal reached" in done.out
    assert f"chef · {ids['slack']} · slack/T1/C1/1.0: goal reached" in done.out


async def test_summarize_refuses_an_agent_without_a_goal(tmp_path: Path) -> None:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    done = await run_bot(tmp_path, "summarize", "--now", "--agent", "waiter")
    assert done.code == 2
    assert done.err.strip() == "parley: no agent 'waiter' with a goal"


async def test_stopping_cancels_a_run_in_progress(
    make_engine: EngineFactory, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(agents_file(chef(goal_check=HOURLY)))
    await talk(engine, 1)
    asked = asyncio.Event()

    def slow_goal_checks(request: RecordedRequest) -> Reply:
        if "[parley:goal]" in request.system_text:
            asked.set()
            return Reply(delay=60)
        return default_brain(request)

    fake_openai.handle(slow_goal_checks)
    poster = RecordingPoster()
    scheduler = GoalScheduler(
        runner=GoalCheckRunner(engine=engine, posters={"slack": poster}),
        agents=list(engine.agents.agents),
    )
    await scheduler.start()
    await asyncio.wait_for(asked.wait(), timeout=20)
    await asyncio.wait_for(scheduler.stop(), timeout=20)
    assert poster.posted == []
    assert "Traceback" not in caplog.text
    assert "Error running job" not in caplog.text


async def test_agents_stored_through_the_api_are_scheduled_and_unscheduled(
    make_engine: EngineFactory,
) -> None:
    engine = make_engine(agents_file(chef()))
    scheduler = GoalScheduler(
        runner=GoalCheckRunner(engine=engine, posters={}),
        agents=list(engine.agents.agents),
        run_missed_at_start=False,
    )
    await scheduler.start()
    try:
        assert scheduler.agent_ids == [], "the file's chef has a goal but no schedule"
        pirate = await engine.agents.create(
            plain(id="pirate", goal="The person named a ship.", goal_check=HOURLY)
        )
        scheduler.sync(list(await engine.agents.refresh()))
        assert scheduler.agent_ids == ["pirate"]
        assert scheduler._scheduler is not None
        job = scheduler._scheduler.get_job("goal-check:pirate")
        assert job is not None
        assert job.next_run_time is not None, "scheduled, not added paused"

        scheduler.sync([pirate])
        assert scheduler._scheduler.get_job("goal-check:pirate") is job, "unchanged: kept"
        await engine.agents.replace(
            "pirate",
            plain(id="pirate", goal="A ship.", goal_check={"every": "2h", "post_to": "thread"}),
        )
        scheduler.sync(list(await engine.agents.refresh()))
        assert scheduler._scheduler.get_job("goal-check:pirate") is not job, "changed: replaced"

        await engine.agents.delete("pirate")
        scheduler.sync(list(await engine.agents.refresh()))
        assert scheduler.agent_ids == []
        assert scheduler._scheduler.get_job("goal-check:pirate") is None
    finally:
        await scheduler.stop()


async def test_summarize_now_runs_agents_stored_through_the_api(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    store = SqliteStore(path=tmp_path / "data" / "parley.sqlite3")
    await store.open()
    await store.create_agent(
        agent_id="pirate",
        definition=plain(id="pirate", goal="The person chose a ship.", goal_check=HOURLY),
    )
    conversation, _ = await store.get_or_create_conversation(key=key(7), agent_id="pirate")
    await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role="user", text="I have chosen the schooner", author_name="Anne"),
    )
    await store.close()
    model = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-secret-summaries"}

    everyone = await run_bot(tmp_path, "summarize", "--now", "--dry-run", **model)
    assert everyone.code == 0, everyone.err
    assert "pirate: 1 checked, 0 failed, 1 printed" in everyone.out
    one = await run_bot(tmp_path, "summarize", "--now", "--agent", "pirate", "--dry-run", **model)
    assert one.code == 0, one.err
    assert "pirate: 0 checked, 0 failed, 1 printed" in one.out


@pytest.mark.parametrize(
    ("weekdays", "fires_on"),
    [
        ("1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
        ("0", {"Sunday"}),
        ("7", {"Sunday"}),
        ("6,0", {"Saturday", "Sunday"}),
        ("*/2", {"Sunday", "Tuesday", "Thursday", "Saturday"}),
        ("mon-wed", {"Monday", "Tuesday", "Wednesday"}),
        ("*", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}),
    ],
)
def test_crontab_weekdays_are_read_as_cron_reads_them(weekdays: str, fires_on: set[str]) -> None:
    """APScheduler counts weekdays from Monday = 0; crontab from Sunday = 0."""
    trigger = crontab_trigger(f"0 9 * * {weekdays}", "UTC")
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    seen = set()
    for _ in range(7):
        fire = trigger.get_next_fire_time(None, moment)
        assert fire is not None
        seen.add(fire.strftime("%A"))
        moment = fire + timedelta(hours=1)
    assert seen == fires_on


def test_every_crontab_the_agents_file_accepts_builds_a_trigger() -> None:
    """The agents file checks cron without APScheduler; whatever it accepts, APScheduler
    must read too, or the scheduler would fail at start on a file that passed ``check``."""
    pieces = {
        "minute": ["*", "*/15", "*/59", "0", "59", "5-10", "5/15", "1-59/2", "1-3,5", "58/1"],
        "hour": ["*", "*/2", "23", "0-23/6", "9-17", "*/23"],
        "day": ["*", "1", "31", "last", "LAST", "1-15/3", "*/30"],
        "month": ["*", "1", "12", "jan", "JAN", "jan-mar", "*/3", "2-11/5", "feb,apr"],
        "weekday": ["*", "0", "7", "1-5", "6,0", "*/2", "sun-mon", "sat-sun", "mon-fri/2"],
    }
    chooser = random.Random(15)  # noqa: S311 - reproducible test cases, not secrets
    for _ in range(2000):
        expression = " ".join(chooser.choice(choices) for choices in pieces.values())
        GoalCheckSpec(cron=expression)
        trigger = crontab_trigger(expression, "UTC")
        assert isinstance(trigger, BaseTrigger), expression
