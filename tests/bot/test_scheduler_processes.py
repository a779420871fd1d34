"""Two ``python -m bot run`` processes on one store post one goal check per conversation."""

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

from memory.base import NewMessage, PlatformKey
from memory.sqlite import SqliteStore
from tests.support.discord_bot import KITCHEN, LOUNGE
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI
from tests.support.process import REPO, run_bot, start_bot

RAN = "goal checks for chef at"


async def wait_for_logs(logs: list[Path], needle: str, count: int) -> None:
    async def seen() -> None:
        while sum(log.read_text().count(needle) for log in logs) < count:  # noqa: ASYNC110 - another process's log file has no event to wait on
            await asyncio.sleep(0.1)

    await asyncio.wait_for(seen(), timeout=90)


async def test_two_processes_post_each_active_conversation_once(
    tmp_path: Path, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    """The shipped chef checks its goal every hour, posting into the conversation's channel.
    Both processes run the latest slot at start (a missed run); one of them wins it."""
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    store = SqliteStore(path=tmp_path / "data" / "parley.sqlite3")
    await store.open()
    key = PlatformKey(platform="discord", workspace=str(KITCHEN), channel=str(LOUNGE))
    conversation, _ = await store.get_or_create_conversation(key=key, agent_id="chef")
    await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role="user", text="I have chosen the paella", author_name="Ada"),
    )
    await store.close()

    settings = {
        "DISCORD_BOT_TOKEN": fake_discord.token,
        "DISCORD_API_URL": fake_discord.api_url,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "sk-goal-secret",
        "BOT_DATA_DIR": str(tmp_path / "data"),
    }
    logs = [tmp_path / f"bot{n}.log" for n in (1, 2)]
    processes = [await start_bot(tmp_path, log, "run", **settings) for log in logs]
    try:
        await wait_for_logs(logs, RAN, 2)
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(p.wait(), timeout=60) for p in processes]
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], texts
    lost = "another process has this slot [agent_id=chef]"
    assert sum(text.count(lost) for text in texts) == 1, texts
    embeds = [m for m in fake_discord.bot_messages(LOUNGE) if m.get("embeds")]
    assert len(embeds) == 1, embeds
    assert "reached" in str(embeds[0]["embeds"][0]).lower()
    assert all("sk-goal-secret" not in text for text in texts)
    assert len([r for r in fake_openai.chat_requests() if "[parley:goal]" in r.system_text]) == 1


async def test_summarize_now_posts_through_the_platform(
    tmp_path: Path, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    """The command-line run posts like a scheduled one, then exits."""
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    store = SqliteStore(path=tmp_path / "data" / "parley.sqlite3")
    await store.open()
    key = PlatformKey(platform="discord", workspace=str(KITCHEN), channel=str(LOUNGE))
    conversation, _ = await store.get_or_create_conversation(key=key, agent_id="chef")
    await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role="user", text="Which dessert goes with it?", author_name="Ada"),
    )
    await store.close()

    done = await run_bot(
        tmp_path,
        "summarize",
        "--now",
        "--agent",
        "chef",
        DISCORD_BOT_TOKEN=fake_discord.token,
        DISCORD_API_URL=fake_discord.api_url,
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-goal-secret",
        BOT_DATA_DIR=str(tmp_path / "data"),
    )
    assert done.code == 0, done.err
    assert "chef: 1 checked, 0 failed, 1 posted" in done.out
    embeds = [m for m in fake_discord.bot_messages(LOUNGE) if m.get("embeds")]
    assert len(embeds) == 1
    assert "not yet" in str(embeds[0]["embeds"][0]).lower()
