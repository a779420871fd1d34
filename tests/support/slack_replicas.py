"""``python -m bot run`` replicas on the fake Slack, and people talking to them in threads.

For the fault tests of issue #14: each replica is a plain process in its own folder (with a
plain agent, so every reply is the fake model's ``You said: Ada: ...``), configured by the
environment only. A :class:`Thread` is one person's thread: a mention, then messages in its
thread, each sent once Slack has an acknowledgement for the one before (so that it is in the
store: the order the journal can promise).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from memory.base import ConversationStore, PlatformKey
from tests.support.delay_proxy import DelayProxy
from tests.support.fake_openai import GOAL_MARKER, SUMMARY_MARKER, FakeOpenAI
from tests.support.fake_slack import TEAM, FakeSlack, mention_event, message_event
from tests.support.process import start_bot

AGENTS = """\
default_agent: plain
agents:
  - id: plain
    name: Plain
    context: You are a helpful assistant.
    first_message: Hi! How can I help?
"""
OPENAI_KEY = "sk-replicas-secret-openai-key"


@dataclass
class Thread:
    """One person's thread: a mention, then messages in its thread."""

    channel: str
    texts: list[str]
    root: str = ""
    stamps: list[str] = field(default_factory=list)
    """Slack's ``ts`` of each message sent, in order."""

    @property
    def key(self) -> PlatformKey:
        return PlatformKey(platform="slack", workspace=TEAM, channel=self.channel, thread=self.root)

    @property
    def replies(self) -> list[str]:
        """What the bot answers to each message, in order."""
        return [f"You said: Ada: {text}" for text in self.texts]


def threads(count: int, messages: int) -> list[Thread]:
    """A channel each: Slack's posting budget is per channel, and one shared channel would
    pace the whole test at one reply a second."""
    return [
        Thread(
            channel=f"C0T{n:04d}",
            texts=[f"thread {n} message {m}" for m in range(1, messages + 1)],
        )
        for n in range(count)
    ]


async def converse(
    fake: FakeSlack, thread: Thread, *, first: float = 0.0, pause: float = 0.0, within: float = 60.0
) -> None:
    """Send the thread's messages in order: the first after ``first`` seconds, each next one
    ``pause`` seconds after the one before was sent, and never before some delivery of the
    one before was acknowledged (Slack may have had to redeliver it)."""
    await asyncio.sleep(first)
    for n, text in enumerate(thread.texts):
        if n == 0:
            event = mention_event(text, channel=thread.channel)
            thread.root = event["ts"]
        else:
            event = message_event(text, channel=thread.channel, thread_ts=thread.root)
        sent = time.monotonic()
        envelope = await fake.send_event(event)
        thread.stamps.append(event["ts"])
        await fake.wait_for(
            partial(acknowledged, fake, str(envelope.payload["event_id"])), within=within
        )
        await asyncio.sleep(max(0.0, sent + pause - time.monotonic()))


def acknowledged(fake: FakeSlack, event_id: str) -> bool:
    """Some delivery of the event was acknowledged."""
    return any(sent.acked_at is not None for sent in fake.attempts(event_id))


def finished_replies(fake: FakeSlack, thread: Thread) -> list[str]:
    """The bot's visible, finished messages in the thread."""
    return [m.text for m in fake.thread(thread.channel, thread.root) if not m.streaming]


def all_answered(fake: FakeSlack, conversations: Sequence[Thread]) -> bool:
    """Every thread shows (at least) its last reply."""
    return all(
        thread.root and thread.replies[-1] in finished_replies(fake, thread)
        for thread in conversations
    )


def answers(fake: FakeOpenAI) -> int:
    """Chat requests that answered a person (not summaries or goal checks)."""
    return sum(
        1
        for request in fake.chat_requests()
        if SUMMARY_MARKER not in request.system_text and GOAL_MARKER not in request.system_text
    )


def slack_settings(fake: FakeSlack, openai: FakeOpenAI) -> dict[str, str]:
    """Slack in Socket Mode and the model, as a user sets them."""
    return {
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_APP_TOKEN": fake.app_token,
        "SLACK_API_URL": fake.api_url,
        "OPENAI_BASE_URL": openai.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_MAX_RETRIES": "0",
        "API_ENABLED": "false",
        "LOG_LEVEL": "INFO",
    }


def proxied(proxy: DelayProxy) -> str:
    """``MONGODB_URI`` through the proxy. SecantusDB calls itself a one-node replica set, and
    the driver would then go round the proxy to the address the server names; a direct
    connection stays on the address given, as with any MongoDB behind a TCP proxy."""
    return f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true"


@dataclass
class Replicas:
    """Bot processes started with one configuration, each in its own folder and log."""

    processes: list[asyncio.subprocess.Process]
    logs: list[Path]

    async def stop(self, *, within: float = 30.0) -> list[int]:
        """SIGTERM each, and their exit codes (killed when they take longer than ``within``)."""
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        try:
            return [await asyncio.wait_for(p.wait(), timeout=within) for p in self.processes]
        finally:
            for process in self.processes:
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in self.logs)


class ReplicaStarter:
    """Starts replicas in ``folder``; ``async with`` stops (kills at worst) all it started."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._started: list[Replicas] = []
        self._count = 0

    async def __call__(self, count: int, **settings: str) -> Replicas:
        processes, logs = [], []
        for _ in range(count):
            self._count += 1
            workdir = self._folder / f"replica{self._count}"
            workdir.mkdir()
            (workdir / "agents.yaml").write_text(AGENTS)
            logs.append(self._folder / f"replica{self._count}.log")
            processes.append(await start_bot(workdir, logs[-1], "run", **settings))
        self._started.append(Replicas(processes, logs))
        return self._started[-1]

    async def __aenter__(self) -> ReplicaStarter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for group in self._started:
            await group.stop(within=10.0)


async def check_conversation(store: ConversationStore, key: PlatformKey, thread: Thread) -> None:
    """The conversation at ``key`` holds one user message and one reply per message of
    ``thread``, in order, none failed."""
    conversation = await store.find_conversation(key=key)
    assert conversation is not None, key
    stored = await store.list_messages(conversation_id=conversation.id, limit=1000)
    expected = [
        pair
        for text, reply in zip(thread.texts, thread.replies, strict=True)
        for pair in (("user", text), ("assistant", reply))
    ]
    assert [(m.role, m.text) for m in stored] == expected, key
    assert all(m.error is None for m in stored)


async def check_stored(store: ConversationStore, thread: Thread, *, attempts: int | None) -> None:
    """The thread's conversation (:func:`check_conversation`), its user messages from the
    messages sent, and each message's journal entry shown (after ``attempts`` attempts,
    unless None)."""
    await check_conversation(store, thread.key, thread)
    conversation = await store.find_conversation(key=thread.key)
    assert conversation is not None
    stored = await store.list_messages(conversation_id=conversation.id, limit=1000)
    assert [m.platform_message_id for m in stored if m.role == "user"] == thread.stamps
    for ts in thread.stamps:
        entry = await store.journal_get(entry_id=f"slack:{TEAM}:{thread.channel}:{ts}")
        assert entry is not None
        assert entry.state == "shown", entry
        if attempts is not None:
            assert entry.attempts == attempts, entry
