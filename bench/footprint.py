"""The bot process's memory in the configuration of issue #18's target: ``python -m bot run``
on SQLite with Slack (Socket Mode), Discord, the HTTP API and the web console all on, after
``conversations`` conversations.

The process runs as an operator runs it: the settings below and nothing else (every other
setting at its default), an admin API key made beforehand with ``python -m bot keys create``.
It talks to the fake Slack (every Web API call answered after 100 ms, as Slack's from far
away), the fake Discord (five servers with twenty people each) and the fake model server.
Before the load, and again after it, an API call with the key and a console sign-in with it
show that both are really served; after the load the API counts the conversations per
platform and the console renders its conversation list, as an operator would look at them.

The conversations alternate between Slack and Discord: on Slack each is a new thread (a
mention in one of 25 channels); on Discord every other one is a mention in a text channel of
its own, the rest a mention in a thread a person has just opened (``THREAD_CREATE``) in one of
those channels. Each conversation gets one message and must be answered: they are sent in
batches of 50 (at 100 a second), each batch after the replies of the one before. Any
conversation left unanswered fails the run, so the figures never come from a half-run. Then
``/proc`` gives the process's peak resident set (``VmHWM``, the target's figure), its
resident set now (``VmRSS``) and its CPU time.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import httpx

from bench.proc import Memory, cpu_seconds, memory_mib
from bench.report import Target
from bench.stats import Row, percentile, summarise
from tests.support.console import csrf_of
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_slack import FakeSlack, mention_event
from tests.support.loopback import free_port
from tests.support.process import REPO, create_key, start_bot, stop_bot, wait_healthy

RSS_TARGET_MIB = 120.0
TARGET_CONVERSATIONS = 1000
"""The number of conversations issue #18's target is stated after."""
SLACK_LATENCY = 0.1
SLACK_CHANNELS = 25
"""Each batch starts at most one thread per channel: replies in one channel share its
rate budget (one call a second), which would hold replies back, not the figures here."""
GUILDS = 5
PEOPLE = 20
BATCH = 50
RATE = 100.0
"""Messages a second within a batch."""
START_WITHIN = 90.0
REPLIES_WITHIN = 180.0
"""Seconds a batch's replies may take (generous: the machine may be busy)."""
GUILD_BASE = 810_000_000_000_000_000
PERSON_BASE = 830_000_000_000_000_000
OPENAI_KEY = "sk-bench-footprint"
_LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


@dataclass
class _Conversation:
    index: int
    platform: str
    """"slack" or "discord"."""
    marker: str
    """Ends the person's message, so the reply (which quotes it) ends with it too."""
    sent_at: float = 0.0
    answered_at: float | None = None


@dataclass(frozen=True)
class _Checks:
    """What the HTTP API and the console showed."""

    agents: int
    slack_total: int = 0
    discord_total: int = 0


def _environment(
    slack: FakeSlack, discord: FakeDiscord, model: FakeOpenAI, workdir: Path, port: int
) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "DISCORD_BOT_TOKEN": discord.token,
        "DISCORD_API_URL": discord.api_url,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_MAX_RETRIES": "0",
        "BOT_DATA_DIR": str(workdir / "data"),
        "API_ENABLED": "true",
        "CONSOLE_ENABLED": "true",
        "PORT": str(port),
    }


def _slack_people(slack: FakeSlack) -> list[str]:
    people = [f"U0P{n:04d}" for n in range(PEOPLE)]
    for n, user in enumerate(people):
        slack.add_user(user, f"Person {n}")
    return people


def _discord_world(discord: FakeDiscord, channels: int) -> tuple[list[int], list[tuple[int, int]]]:
    """``GUILDS`` servers with every person in each, and ``channels`` text channels spread
    over them. Returns the people and the (server, channel) pairs."""
    people = [PERSON_BASE + n for n in range(PEOPLE)]
    for n, user in enumerate(people):
        discord.add_user(user, f"person{n}", global_name=f"Person {n}")
    guilds = [GUILD_BASE + n for n in range(GUILDS)]
    for n, guild in enumerate(guilds):
        discord.add_guild(guild, f"Server {n}", owner_id=people[0])
        for user in people:
            discord.add_member(guild, user)
    rooms = []
    for n in range(channels):
        guild = guilds[n % GUILDS]
        channel = discord.next_id()
        discord.add_text_channel(guild, channel, f"room-{n}")
        rooms.append((guild, channel))
    return people, rooms


async def _readyz(base: str, process: asyncio.subprocess.Process, log: Path) -> None:
    """Wait until ``/readyz`` says ready: the store, the model, Slack and Discord connected."""

    def both_platforms(response: httpx.Response) -> bool:
        adapters = response.json().get("checks", {}).get("adapters", {})
        return {"slack", "discord"} <= adapters.keys()

    try:
        await wait_healthy(
            base, process, log, within=START_WITHIN, path="/readyz", ready=both_platforms
        )
    except TimeoutError:
        raise RuntimeError(
            f"the bot was not ready within {START_WITHIN:g} s:\n{_tail(log)}"
        ) from None


async def _check_http(base: str, key: str, *, after_load: bool) -> _Checks:
    """An authenticated API call and a console sign-in with the operator's key; after the
    load, the API's conversation counts per platform and the console's conversation list."""
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        agents = await client.get("/api/v1/agents", headers=auth)
        if agents.status_code != 200 or "chef" not in {a["id"] for a in agents.json()}:
            raise RuntimeError(f"the HTTP API did not answer: {agents.status_code} {agents.text}")
        home = await client.get("/console", follow_redirects=True)
        if home.status_code != 200 or 'name="csrf"' not in home.text:
            raise RuntimeError(f"the console is not served: GET /console -> {home.status_code}")
        signed = await client.post("/console/signin", data={"csrf": csrf_of(home.text), "key": key})
        if signed.status_code != 303:
            raise RuntimeError(f"could not sign in to the console: {signed.status_code}")
        page = await client.get("/console/conversations")
        if page.status_code != 200 or "csrf" not in page.text:
            raise RuntimeError(f"the console's conversations page: {page.status_code}")
        if not after_load:
            return _Checks(agents=len(agents.json()))
        totals = {}
        for platform in ("slack", "discord"):
            found = await client.get(
                "/api/v1/conversations", params={"platform": platform, "limit": 1}, headers=auth
            )
            if found.status_code != 200:
                raise RuntimeError(f"the API's conversation list: {found.status_code}")
            totals[platform] = int(found.json()["total"])
        return _Checks(
            agents=len(agents.json()),
            slack_total=totals["slack"],
            discord_total=totals["discord"],
        )


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _log_problems(log: Path) -> list[str]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if _LOG_PROBLEM.search(line)]


class _Load:
    """Sends the conversations' messages and waits for their replies."""

    def __init__(self, slack: FakeSlack, discord: FakeDiscord, conversations: int) -> None:
        self.slack = slack
        self.discord = discord
        self.conversations = [
            _Conversation(index=n, platform="slack" if n % 2 == 0 else "discord", marker=f"[c{n}]")
            for n in range(conversations)
        ]
        discord_count = conversations // 2
        self.slack_people = _slack_people(slack)
        self.discord_people, self.rooms = _discord_world(discord, max(1, (discord_count + 1) // 2))
        self.bot_id = str(discord.bot["id"])
        self.mention = f"<@{self.bot_id}>"
        self._slack_waiting: dict[str, _Conversation] = {}
        self._discord_waiting: dict[str, _Conversation] = {}
        self._discord_index = 0
        self.threads = 0

    def split(self) -> tuple[int, int]:
        """How many conversations are on Slack, and how many on Discord."""
        slack = sum(c.platform == "slack" for c in self.conversations)
        return slack, len(self.conversations) - slack

    @staticmethod
    def text(conversation: _Conversation) -> str:
        return (
            f"conversation {conversation.index}: what could I cook tonight with chickpeas "
            f"and spinach? {conversation.marker}"
        )

    async def send(self, conversation: _Conversation) -> None:
        person = conversation.index // 2 % PEOPLE
        conversation.sent_at = perf_counter()
        if conversation.platform == "slack":
            await self._send_slack(conversation, person)
        else:
            await self._send_discord(conversation, person)

    async def _send_slack(self, conversation: _Conversation, person: int) -> None:
        """A mention in a channel: the bot answers in a new thread under it."""
        channel = f"C0ROOM{conversation.index // 2 % SLACK_CHANNELS:03d}"
        event = mention_event(
            self.text(conversation), user=self.slack_people[person], channel=channel
        )
        self._slack_waiting[event["ts"]] = conversation
        await self.slack.send_event(event)

    async def _send_discord(self, conversation: _Conversation, person: int) -> None:
        """Every other one a mention in a text channel of its own; the rest a mention in a
        thread a person has just opened in one of those channels."""
        number = self._discord_index
        self._discord_index += 1
        guild, room = self.rooms[number // 2 % len(self.rooms)]
        author = self.discord_people[person]
        where = room
        if number % 2:
            where = self.discord.next_id()
            thread = self.discord.add_thread(
                guild, room, where, f"question {conversation.index}", owner_id=author
            )
            await self.discord.dispatch(
                "THREAD_CREATE", {**thread, "newly_created": True}, guild_id=guild
            )
            self.threads += 1
        text = f"{self.mention} {self.text(conversation)}"
        message = await self.discord.say(where, author, text)
        self._discord_waiting[message["id"]] = conversation

    def _slack_answered(self, start: int) -> bool:
        now = perf_counter()
        for message in self.slack.messages[start:]:
            if message.streaming or message.deleted or message.thread_ts is None:
                continue
            conversation = self._slack_waiting.get(message.thread_ts)
            if conversation is not None and conversation.marker in message.text:
                conversation.answered_at = now
                del self._slack_waiting[message.thread_ts]
        return not self._slack_waiting

    def _discord_answered(self) -> bool:
        if not self._discord_waiting:
            return True
        now = perf_counter()
        for message in self.discord.messages.values():
            reference = message.get("message_reference")
            if reference is None or message["author"]["id"] != self.bot_id:
                continue
            conversation = self._discord_waiting.get(reference.get("message_id", ""))
            if conversation is not None and message["content"].rstrip().endswith(
                conversation.marker
            ):
                conversation.answered_at = now
                del self._discord_waiting[reference["message_id"]]
        return not self._discord_waiting

    async def batch(self, conversations: list[_Conversation]) -> None:
        """Send the batch's messages at ``RATE`` a second, then wait for every reply."""
        start = len(self.slack.messages)
        for conversation in conversations:
            await self.send(conversation)
            await asyncio.sleep(1 / RATE)
        try:
            await asyncio.gather(
                self.slack.wait_for(lambda: self._slack_answered(start), within=REPLIES_WITHIN),
                self.discord.wait_for(self._discord_answered, within=REPLIES_WITHIN),
            )
        except TimeoutError:
            slack, discord = len(self._slack_waiting), len(self._discord_waiting)
            raise RuntimeError(
                f"{slack + discord} conversations got no reply within {REPLIES_WITHIN:g} s "
                f"(Slack {slack}, Discord {discord}); no figure is reported from a half-run"
            ) from None


@dataclass(frozen=True)
class _Measured:
    wall: float
    """Seconds from the first message sent to the last reply seen."""
    cpu: float
    """The bot's CPU seconds over the same span."""
    cpu_total: float
    """The bot's CPU seconds in all, start-up included."""
    at_start: Memory
    """Once ready, before the first message."""
    memory: Memory
    """At the end, after the console and API looks that follow the load."""
    after: _Checks


async def run_footprint(
    *, conversations: int, progress: Callable[[str], None]
) -> tuple[list[Row], list[Target], str]:
    """``conversations`` conversations through one ``python -m bot run`` with Slack, Discord,
    the HTTP API and the console on; its peak RSS against the target."""
    if conversations < 2:
        raise ValueError("the footprint scenario needs at least 2 conversations")
    with tempfile.TemporaryDirectory(prefix="parley-footprint-bench-") as tmp:
        workdir = Path(tmp)
        shutil.copy(REPO / "agents.yaml", workdir / "agents.yaml")
        log = workdir / "bot.log"
        async with (
            FakeSlack(api_latency=SLACK_LATENCY) as slack,
            FakeDiscord() as discord,
            FakeOpenAI() as model,
        ):
            load = _Load(slack, discord, conversations)
            port = free_port()
            env = _environment(slack, discord, model, workdir, port)
            key = await create_key(workdir, "--name", "operator", "--scope", "admin", **env)
            process = await start_bot(workdir, log, "run", **env)
            try:
                measured = await _drive(
                    load, process, log, base=f"http://127.0.0.1:{port}", key=key, progress=progress
                )
            finally:
                await stop_bot(process)
        problems = _log_problems(log)
    for line in problems[:10]:
        progress(f"bot log: {line}")
    if len(problems) > 10:
        progress(f"bot log: ... {len(problems) - 10} more warning/error lines")
    answered = sum(c.answered_at is not None for c in load.conversations)
    if answered != conversations:
        raise RuntimeError(f"{conversations - answered} conversations got no reply")
    slack_count, discord_count = load.split()
    after = measured.after
    if after.slack_total < slack_count or after.discord_total < discord_count:
        raise RuntimeError(
            f"the API lists {after.slack_total} Slack and {after.discord_total} Discord "
            f"conversations, not {slack_count} and {discord_count}"
        )
    return _results(
        load=load, measured=measured, problems=len(problems), exit_code=process.returncode
    )


async def _drive(
    load: _Load,
    process: asyncio.subprocess.Process,
    log: Path,
    *,
    base: str,
    key: str,
    progress: Callable[[str], None],
) -> _Measured:
    """Wait for the bot to be ready, check the API and console, run the load, look again."""
    launched = perf_counter()
    await wait_healthy(base, process, log, within=START_WITHIN)
    await load.slack.wait_connected(within=START_WITHIN)
    await _readyz(base, process, log)
    started_in = perf_counter() - launched
    before = await _check_http(base, key, after_load=False)
    at_start = memory_mib(process.pid)
    total = len(load.conversations)
    progress(
        f"bot ready in {started_in:.1f} s: RSS {at_start.now:.0f} MiB (peak "
        f"{at_start.peak:.0f}); the API ({before.agents} agents) and the console answer; "
        f"{total:,} conversations, Slack and Discord in turn, in batches of {BATCH}"
    )
    cpu_before = cpu_seconds(process.pid)
    began = perf_counter()
    for first in range(0, total, BATCH):
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited during the load:\n{_tail(log)}")
        try:
            await load.batch(load.conversations[first : first + BATCH])
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nthe bot's log ends:\n{_tail(log)}") from None
        done = min(first + BATCH, total)
        if done % (BATCH * 5) == 0 or done == total:
            now = memory_mib(process.pid)
            progress(
                f"{done:,} conversations answered: RSS {now.now:.0f} MiB (peak {now.peak:.0f})"
            )
    wall = perf_counter() - began
    cpu = cpu_seconds(process.pid) - cpu_before
    after = await _check_http(base, key, after_load=True)
    return _Measured(
        wall=wall,
        cpu=cpu,
        cpu_total=cpu_seconds(process.pid),
        at_start=at_start,
        memory=memory_mib(process.pid),
        after=after,
    )


def _results(
    *, load: _Load, measured: _Measured, problems: int, exit_code: int | None
) -> tuple[list[Row], list[Target], str]:
    conversations = len(load.conversations)
    memory, at_start, wall = measured.memory, measured.at_start, measured.wall
    latencies = [c.answered_at - c.sent_at for c in load.conversations if c.answered_at is not None]
    slack_count, discord_count = load.split()
    met = memory.peak <= RSS_TARGET_MIB
    row = summarise(
        latencies=latencies,
        wall=wall,
        cpu=measured.cpu,
        store="sqlite",
        section="footprint",
        approach="bot run",
        scenario=f"python -m bot run, {conversations:,} conversations (Slack + Discord), "
        "API and console on",
    )
    row.target = f"peak {memory.peak:.1f} MiB, <={RSS_TARGET_MIB:g} {'met' if met else 'NOT met'}"
    short = conversations < TARGET_CONVERSATIONS
    name = (
        f"peak RSS <= {RSS_TARGET_MIB:g} MiB (python -m bot run: Slack, Discord, API and "
        f"console on, after {conversations:,} conversations)"
    )
    detail = (
        f"VmHWM {memory.peak:.1f} MiB, VmRSS {memory.now:.1f} MiB after {conversations:,} "
        f"conversations answered ({slack_count:,} Slack threads, {discord_count:,} Discord: "
        f"{discord_count - load.threads:,} channels, {load.threads:,} threads) in "
        f"{wall:.1f} s; VmRSS {at_start.now:.1f} MiB once ready; bot CPU "
        f"{measured.cpu / conversations * 1000:.1f} ms per conversation "
        f"({measured.cpu_total:.1f} s in all, "
        f"start-up included); reply p50 / p99 on Slack {_spread(load, 'slack')}, on "
        f"Discord {_spread(load, 'discord')}; "
        f"{problems} warning/error lines in the bot's log, exit status {exit_code}"
    )
    if short:
        detail += (
            f"; a short (--quick) run: the target is stated after {TARGET_CONVERSATIONS:,} "
            "conversations"
        )
    target = Target(store="sqlite", name=name, met=met, detail=detail)
    setup = (
        f"Footprint: python -m bot run (SQLite; Slack in Socket Mode, Discord, the HTTP API "
        "and the web console on, every other setting at its default; an admin API key made "
        "with python -m bot keys create, checked through the API and a console sign-in "
        f"before and after the load) against the fake Slack (Web API "
        f"{SLACK_LATENCY * 1000:.0f} ms), the fake Discord ({GUILDS} servers, {PEOPLE} people) "
        f"and the fake model server; {conversations:,} conversations of one message each, "
        f"Slack threads and Discord channels and threads in turn, sent in batches of {BATCH} "
        f"at {RATE:g}/s, each batch after the replies of the one before; VmHWM and VmRSS "
        "from /proc at the end."
    )
    return [row], [target], setup


def _spread(load: _Load, platform: str) -> str:
    """The p50 / p99 reply times of a platform's conversations."""
    times = [
        c.answered_at - c.sent_at
        for c in load.conversations
        if c.platform == platform and c.answered_at is not None
    ]
    return f"{percentile(times, 50) * 1000:.0f} / {percentile(times, 99) * 1000:.0f} ms"
