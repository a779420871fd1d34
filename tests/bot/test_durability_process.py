"""Crashes and deploys (#14) as a supervisor causes them: ``python -m bot run`` as a plain
process against the fake Slack (Socket Mode and HTTP mode), the fake Discord and a fake model
that streams slowly, all in the test's loop, over one SQLite file that outlives the processes.

* SIGKILL mid-reply, then a new process on the same file: every message Slack had acknowledged
  and every Discord message is answered exactly once and shown once (a reply cut by the kill
  is replaced by the complete one), and the store holds one user message and one reply for
  each. The killed process's conversations are taken over once their lease lapses
  (``JOURNAL_LEASE_SECONDS``, 5 s here).
* SIGTERM mid-reply: replies in progress finish within ``SHUTDOWN_GRACE``, nothing new is
  started, the process exits within the grace plus a second (a reply too slow for the grace
  included), and the next process answers what was left once. A Socket Mode event or a
  Discord message arriving after the signal is kept for the next process; in HTTP mode
  ``/slack/events`` answers 503 from the signal on, so Slack sends it again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory.base import PlatformKey
from memory.sqlite import SqliteStore
from tests.support.discord_bot import ADA, ADA_DM, CHEF_ROOM, KITCHEN, LOUNGE
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, default_brain
from tests.support.fake_slack import (
    SIGNING_SECRET,
    TEAM,
    FakeSlack,
    event_callback,
    mention_event,
    signed_headers,
)
from tests.support.loopback import free_port
from tests.support.process import REPO, start_bot, wait_healthy
from tests.support.slack_bot import CHANNEL

START = 60.0
"""Seconds for a fresh interpreter to import everything and connect (slow CI machines)."""
OPENAI_KEY = "sk-durability-process-secret"
LEASE = 5.0
"""``JOURNAL_LEASE_SECONDS``: how long a killed process's conversations stay with it."""
TAKEOVER = 20.0
"""Seconds, beyond the lease, a new process may take to start and answer what a killed one
left (the default lease of 30 s would not make it)."""
GRACE = 2.0
"""``SHUTDOWN_GRACE`` of the SIGTERM tests; their replies take about a second."""
SLACK_CHANNELS = (CHANNEL, "C0GARDEN", "C0PANTRY")
"""Threads in channels of their own: Slack's one call a second per channel does not make the
tests wait."""


class Pace:
    """The fake model's handler: the default brain's answers, streamed ``size`` characters
    every ``delay`` seconds, or every ``slow_delay`` seconds for a request whose last message
    holds ``slow`` (the test changes them as it goes)."""

    def __init__(
        self, *, size: int, delay: float, slow: str | None = None, slow_delay: float = 0.0
    ) -> None:
        self.size = size
        self.delay = delay
        self.slow = slow
        self.slow_delay = slow_delay

    def __call__(self, request: RecordedRequest) -> Reply:
        is_slow = self.slow is not None and self.slow in json.dumps(request.messages[-1:])
        return dataclasses.replace(
            default_brain(request),
            chunk_size=self.size,
            chunk_delay=self.slow_delay if is_slow else self.delay,
        )


def said(text: str) -> str:
    """The default brain's visible answer to Ada's ``text``."""
    return f"You said: Ada: {text}"


async def until(
    check: Callable[[], bool], *, within: float, what: str, state: Callable[[], object] = str
) -> None:
    """Wait for ``check()``; fail saying what was awaited and how things are (``state()``)."""
    try:
        async with asyncio.timeout(max(within, 0.0)):
            while True:
                if check():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {within:.1f} s: {what}; now {state()}") from None


# the processes -----------------------------------------------------------------------------


@dataclass
class Run:
    """One ``python -m bot run`` process."""

    process: asyncio.subprocess.Process
    log: Path
    base: str

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self) -> None:
        """Serving, and every platform connected (``/readyz`` is 200)."""
        await wait_healthy(self.base, self.process, self.log, within=START)
        async with (
            asyncio.timeout(START),
            httpx.AsyncClient(base_url=self.base, timeout=5.0) as client,
        ):
            while True:
                if (await client.get("/readyz")).status_code == 200:
                    return
                await asyncio.sleep(0.05)

    async def backlog(self) -> object:
        """The journal's unfinished entries, as ``/readyz`` reports them."""
        async with httpx.AsyncClient(base_url=self.base, timeout=5.0) as client:
            return (await client.get("/readyz")).json()["checks"].get("journal_backlog")

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM and wait for the exit: its status and the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), timeout=30)
        return code, time.monotonic() - started

    def assert_clean(self) -> None:
        output = self.output
        assert "Traceback" not in output, output
        assert OPENAI_KEY not in output


class Bots:
    """Starts processes over one data folder against the fakes."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.runs: list[Run] = []

    async def start(self, **more: str) -> Run:
        port = free_port()
        log = self.workdir / f"bot-{len(self.runs) + 1}.log"
        process = await start_bot(self.workdir, log, "run", **{**self.env, **more}, PORT=str(port))
        run = Run(process=process, log=log, base=f"http://127.0.0.1:{port}")
        self.runs.append(run)
        await run.ready()
        return run

    async def stored(self, key: PlatformKey) -> list[tuple[str, str]]:
        """The conversation's messages in the store, as (role, text), in order."""
        store = SqliteStore(path=self.workdir / "data" / "parley.sqlite3")
        await store.open()
        try:
            conversation = await store.find_conversation(key=key)
            if conversation is None:
                return []
            messages = await store.list_messages(conversation_id=conversation.id, limit=100)
            return [(message.role, message.text) for message in messages]
        finally:
            await store.close()

    async def cleanup(self) -> None:
        for run in self.runs:
            if run.process.returncode is None:
                run.process.kill()
                await run.process.wait()


@pytest.fixture
async def bots(
    tmp_path: Path, fake_slack: FakeSlack, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> AsyncIterator[Bots]:
    """Slack in Socket Mode and Discord, the chef answering; tests add settings per run."""
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    made = Bots(
        tmp_path,
        {
            "SLACK_BOT_TOKEN": fake_slack.bot_token,
            "SLACK_APP_TOKEN": fake_slack.app_token,
            "SLACK_API_URL": fake_slack.api_url,
            "DISCORD_BOT_TOKEN": fake_discord.token,
            "DISCORD_API_URL": fake_discord.api_url,
            "OPENAI_BASE_URL": fake_openai.base_url,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_MAX_RETRIES": "0",
            "BOT_DATA_DIR": str(tmp_path / "data"),
            "JOURNAL_LEASE_SECONDS": str(LEASE),
            "LOG_LEVEL": "INFO",
        },
    )
    try:
        yield made
    finally:
        await made.cleanup()


# what people say and see -------------------------------------------------------------------


def once_each(texts: tuple[str, ...]) -> list[tuple[str, str]]:
    """One user message and one reply for each of Ada's messages, in order."""
    return [turn for text in texts for turn in (("user", text), ("assistant", said(text)))]


@dataclass(frozen=True)
class SlackThread:
    """A thread Ada starts with a mention and goes on in with more mentions."""

    channel: str
    root: str
    texts: tuple[str, ...]
    events: tuple[dict[str, Any], ...]

    @classmethod
    def make(cls, tag: str, count: int, *, channel: str = CHANNEL) -> SlackThread:
        texts = tuple(f"{tag} message {n} about cooking" for n in range(1, count + 1))
        root = mention_event(texts[0], channel=channel)
        more = [mention_event(text, channel=channel, thread_ts=root["ts"]) for text in texts[1:]]
        return cls(channel=channel, root=root["ts"], texts=texts, events=(root, *more))

    def shown(self, fake: FakeSlack) -> list[str]:
        return [message.text for message in fake.thread(self.channel, self.root)]

    def streaming(self, fake: FakeSlack) -> bool:
        return any(message.streaming for message in fake.thread(self.channel, self.root))

    def done(self, fake: FakeSlack) -> bool:
        """Every message answered in full, in order, once."""
        return not self.streaming(fake) and self.shown(fake) == [said(t) for t in self.texts]

    @property
    def key(self) -> PlatformKey:
        return PlatformKey(platform="slack", workspace=TEAM, channel=self.channel, thread=self.root)


def slack_threads(tag: str, threads: int, per_thread: int) -> list[SlackThread]:
    return [
        SlackThread.make(
            f"{tag} thread {n}", per_thread, channel=SLACK_CHANNELS[n % len(SLACK_CHANNELS)]
        )
        for n in range(threads)
    ]


@dataclass(frozen=True)
class DiscordPlace:
    """A channel (Ada mentions the bot) or Ada's DM."""

    guild: int | None
    channel: int
    texts: tuple[str, ...]

    async def say(self, fake: FakeDiscord, text: str) -> None:
        mention = f"<@{fake.bot['id']}> " if self.guild is not None else ""
        await fake.say(self.channel, ADA, mention + text)

    async def say_all(self, fake: FakeDiscord) -> None:
        for text in self.texts:
            await self.say(fake, text)

    def shown(self, fake: FakeDiscord) -> list[str]:
        return [str(message["content"]) for message in fake.bot_messages(self.channel)]

    def done(self, fake: FakeDiscord) -> bool:
        return self.shown(fake) == [said(t) for t in self.texts]

    @property
    def key(self) -> PlatformKey:
        workspace = "dm" if self.guild is None else str(self.guild)
        return PlatformKey(platform="discord", workspace=workspace, channel=str(self.channel))


def discord_places(tag: str, per_place: int) -> list[DiscordPlace]:
    return [
        DiscordPlace(
            guild=guild,
            channel=channel,
            texts=tuple(f"{tag} {name} message {n} about cooking" for n in range(1, per_place + 1)),
        )
        for guild, channel, name in (
            (KITCHEN, CHEF_ROOM, "chef room"),
            (KITCHEN, LOUNGE, "lounge"),
            (None, ADA_DM, "dm"),
        )
    ]


# SIGKILL -----------------------------------------------------------------------------------


async def test_sigkill_mid_reply_then_a_restart_answers_every_message_once(
    bots: Bots, fake_slack: FakeSlack, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    """Slack in Socket Mode and Discord: three conversations each, two messages in each."""
    pace = Pace(size=3, delay=0.15)  # a reply streams for several seconds
    fake_openai.handle(pace)
    first = await bots.start()

    threads = slack_threads("kill", 3, 2)
    envelopes = [
        await fake_slack.send_event(event) for thread in threads for event in thread.events
    ]
    places = discord_places("kill", 2)
    for place in places:
        await place.say_all(fake_discord)
    for envelope in envelopes:
        await fake_slack.wait_ack(envelope)
    await until(
        lambda: (
            all(thread.streaming(fake_slack) for thread in threads)
            and all(place.shown(fake_discord) for place in places)
        ),
        within=20,
        what="every conversation's first reply streaming",
    )
    await first.kill()
    killed_at = time.monotonic()
    for thread in threads:
        assert len(thread.shown(fake_slack)) == 1
        assert thread.shown(fake_slack) != [said(thread.texts[0])], "cut by the kill"
    for place in places:
        assert place.shown(fake_discord) != [said(place.texts[0])], "cut by the kill"

    pace.delay = 0.0
    second = await bots.start()
    await until(
        lambda: (
            all(thread.done(fake_slack) for thread in threads)
            and all(place.done(fake_discord) for place in places)
        ),
        within=killed_at + LEASE + TAKEOVER - time.monotonic(),
        what="every message answered once after the restart",
        state=lambda: (
            [thread.shown(fake_slack) for thread in threads],
            [place.shown(fake_discord) for place in places],
        ),
    )
    assert await second.backlog() == 0
    code, _ = await second.terminate()
    assert code == 0, second.output
    second.assert_clean()

    for thread in threads:  # nothing more came while the second process stopped
        assert thread.shown(fake_slack) == [said(text) for text in thread.texts]
        assert await bots.stored(thread.key) == once_each(thread.texts)
    for place in places:
        assert place.shown(fake_discord) == [said(text) for text in place.texts]
        assert await bots.stored(place.key) == once_each(place.texts)


# SIGTERM -----------------------------------------------------------------------------------


async def test_sigterm_mid_reply_finishes_replies_in_progress_and_leaves_the_rest(
    bots: Bots, fake_slack: FakeSlack, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    """Replies streaming at SIGTERM finish within the grace (about a second each); one that
    cannot (a slow stream) is cut; nothing else starts; the process exits within the grace
    plus a second; the next process answers what is left once, the cut reply replaced."""
    pace = Pace(size=10, delay=0.05, slow="slow", slow_delay=0.5)
    fake_openai.handle(pace)
    first = await bots.start(SHUTDOWN_GRACE=str(GRACE))

    threads = slack_threads("term", 2, 2)
    slow = SlackThread.make("slow", 1, channel=SLACK_CHANNELS[2])
    for thread in [*threads, slow]:
        for event in thread.events:
            await fake_slack.wait_ack(await fake_slack.send_event(event))
    places = discord_places("term", 2)[:2]
    for place in places:
        await place.say_all(fake_discord)
    await until(
        lambda: (
            all(thread.streaming(fake_slack) for thread in [*threads, slow])
            and all(place.shown(fake_discord) for place in places)
        ),
        within=20,
        what="every conversation's first reply streaming",
    )
    assert not any(thread.done(fake_slack) for thread in threads)

    started = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    late = SlackThread.make("late", 1, channel=SLACK_CHANNELS[1])
    late_envelope = await fake_slack.send_event(late.events[0])
    late_place = DiscordPlace(guild=None, channel=ADA_DM, texts=("late message about cooking",))
    await late_place.say_all(fake_discord)
    code = await asyncio.wait_for(first.process.wait(), timeout=30)
    took = time.monotonic() - started
    assert code == 0, first.output
    assert took <= GRACE + 1, f"exited {took:.1f} s after SIGTERM"
    first.assert_clean()

    for thread in threads:
        assert thread.shown(fake_slack) == [said(thread.texts[0])], "finished within the grace"
        assert not thread.streaming(fake_slack)
    for place in places:
        assert place.shown(fake_discord) == [said(place.texts[0])], "finished within the grace"
    assert slow.shown(fake_slack) != [said(slow.texts[0])], "too slow for the grace: cut"
    assert late.shown(fake_slack) == [], "nothing new started after SIGTERM"
    assert late_place.shown(fake_discord) == []

    pace.slow_delay = 0.0
    second = await bots.start()
    if late_envelope.acked_at is None:  # not acknowledged by the first: Slack sends it again
        await fake_slack.wait_ack(await fake_slack.send_event(late.events[0], retry_attempt=1))
    everything = [*threads, slow, late]
    await until(
        lambda: (
            all(thread.done(fake_slack) for thread in everything)
            and all(place.done(fake_discord) for place in [*places, late_place])
        ),
        within=30,
        what="everything left answered once after the restart",
        state=lambda: (
            [thread.shown(fake_slack) for thread in everything],
            [place.shown(fake_discord) for place in [*places, late_place]],
        ),
    )
    assert await second.backlog() == 0
    code, _ = await second.terminate()
    assert code == 0, second.output
    second.assert_clean()

    for thread in everything:
        assert thread.shown(fake_slack) == [said(text) for text in thread.texts]
        assert await bots.stored(thread.key) == once_each(thread.texts)
    for place in [*places, late_place]:
        assert place.shown(fake_discord) == [said(text) for text in place.texts]
        assert await bots.stored(place.key) == once_each(place.texts)


# Slack's HTTP mode ---------------------------------------------------------------------------

HTTP_MODE = {
    "SLACK_MODE": "http",
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SLACK_APP_TOKEN": "",
    "DISCORD_BOT_TOKEN": "",
}


@dataclass(frozen=True)
class Delivery:
    """One event as Slack delivers it over HTTP: the same body each time it is retried."""

    body: bytes

    @classmethod
    def of(cls, event: dict[str, Any]) -> Delivery:
        return cls(json.dumps(event_callback(event)).encode())

    async def post(self, run: Run, *, retry: int = 0) -> int | None:
        """POST it signed to ``/slack/events``: the status, or None when nothing answered."""
        headers = signed_headers(SIGNING_SECRET, self.body, content_type="application/json")
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
        try:
            async with httpx.AsyncClient(base_url=run.base, timeout=10.0) as client:
                response = await client.post("/slack/events", content=self.body, headers=headers)
        except httpx.TransportError:
            return None
        return response.status_code


async def test_sigkill_in_http_mode_then_a_restart_answers_every_acknowledged_event_once(
    bots: Bots, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    pace = Pace(size=3, delay=0.15)
    fake_openai.handle(pace)
    first = await bots.start(**HTTP_MODE)

    threads = slack_threads("http kill", 3, 2)
    deliveries = [Delivery.of(event) for thread in threads for event in thread.events]
    for delivery in deliveries:
        assert await delivery.post(first) == 200, "acknowledged once recorded"
    await until(
        lambda: all(thread.streaming(fake_slack) for thread in threads),
        within=20,
        what="every thread's first reply streaming",
    )
    await first.kill()
    killed_at = time.monotonic()
    missed = SlackThread.make("http missed", 1)
    assert await Delivery.of(missed.events[0]).post(first) is None, "nobody answers"

    pace.delay = 0.0
    second = await bots.start(**HTTP_MODE)
    assert await Delivery.of(missed.events[0]).post(second, retry=1) == 200, "Slack's retry"
    assert await deliveries[0].post(second, retry=1) == 200, "a redelivery is acknowledged"
    everything = [*threads, missed]
    await until(
        lambda: all(thread.done(fake_slack) for thread in everything),
        within=killed_at + LEASE + TAKEOVER - time.monotonic(),
        what="every acknowledged event answered once after the restart",
        state=lambda: [thread.shown(fake_slack) for thread in everything],
    )
    code, _ = await second.terminate()
    assert code == 0, second.output
    second.assert_clean()

    for thread in everything:
        assert thread.shown(fake_slack) == [said(text) for text in thread.texts]
        assert await bots.stored(thread.key) == once_each(thread.texts)


async def test_sigterm_in_http_mode_answers_503_so_slack_sends_events_again(
    bots: Bots, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    fake_openai.handle(Pace(size=10, delay=0.05))
    first = await bots.start(SHUTDOWN_GRACE=str(GRACE), **HTTP_MODE)

    threads = slack_threads("http term", 2, 2)
    for thread in threads:
        for event in thread.events:
            assert await Delivery.of(event).post(first) == 200
    await until(
        lambda: all(thread.streaming(fake_slack) for thread in threads),
        within=20,
        what="every thread's first reply streaming",
    )

    started = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    late = SlackThread.make("http late", 1)
    delivery = Delivery.of(late.events[0])
    answers = []
    while first.process.returncode is None:  # Slack retrying while the process stops
        answers.append(await delivery.post(first))
        await asyncio.sleep(0.1)
    took = time.monotonic() - started
    assert first.process.returncode == 0, first.output
    assert took <= GRACE + 1, f"exited {took:.1f} s after SIGTERM"
    assert answers[0] == 503, answers
    assert set(answers) <= {503, None}, f"never acknowledged while stopping: {answers}"
    first.assert_clean()
    for thread in threads:
        assert thread.shown(fake_slack) == [said(thread.texts[0])], "finished within the grace"
        assert not thread.streaming(fake_slack)
    assert late.shown(fake_slack) == []

    second = await bots.start(**HTTP_MODE)
    assert await delivery.post(second, retry=1) == 200, "Slack's retry reaches the next process"
    everything = [*threads, late]
    await until(
        lambda: all(thread.done(fake_slack) for thread in everything),
        within=30,
        what="everything left answered once after the restart",
        state=lambda: [thread.shown(fake_slack) for thread in everything],
    )
    code, _ = await second.terminate()
    assert code == 0, second.output
    for thread in everything:
        assert thread.shown(fake_slack) == [said(text) for text in thread.texts]
        assert await bots.stored(thread.key) == once_each(thread.texts)
