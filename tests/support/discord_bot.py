"""The Discord side of the tests: a populated fake Discord and the bot started against it.

Fixtures (a plugin of ``tests/conftest.py``): ``fake_discord``, a running
:class:`~tests.support.fake_discord.FakeDiscord` with :func:`populate`'s world (two guilds with
bound and unbound channels, three people and another bot in both, a DM); and ``start_bot``, the
product wired as ``python -m bot run`` wires it (real engine, SQLite store, OpenAI client on the
fake OpenAI server), pointed at the fakes through settings only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordAdapter
from bot.engine import Engine
from bot.llm import OpenAIModelClient
from bot.telemetry import Telemetry
from bot.tokens import TokenCounter
from config.agents import AgentsFile
from config.settings import Settings
from memory.base import Conversation, ConversationStore, PlatformKey
from memory.sqlite import SqliteStore
from tests.support.agents import agents_file, chef, plain
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI
from tests.support.loopback import free_port

KITCHEN = 810000000000000001
"""A guild (shard 0 of 2) with a channel bound to the chef, one bound to the plain agent, and
an unbound lounge."""
CHEF_ROOM = 811000000000000011
PLAIN_ROOM = 811000000000000012
LOUNGE = 811000000000000013
GARDEN = 820000000000000002
"""Another guild (shard 1 of 2), with a channel bound to the chef and an unbound one."""
GARDEN_CHEF = 821000000000000021
GARDEN_CHAT = 821000000000000022
ADA = 830000000000000001
BOB = 830000000000000002
ADMIN = 830000000000000003
OTHER_BOT = 830000000000000004
ADA_DM = 840000000000000001


def populate(fake: FakeDiscord) -> FakeDiscord:
    """Two guilds with their channels, three people in both, another bot, and Ada's DM."""
    fake.add_user(ADA, "ada", global_name="Ada")
    fake.add_user(BOB, "bob", global_name="Bob")
    fake.add_user(ADMIN, "admin", global_name="Admin")
    fake.add_user(OTHER_BOT, "otherbot", bot=True)
    for guild_id, name in ((KITCHEN, "Kitchen"), (GARDEN, "Garden")):
        fake.add_guild(guild_id, name, owner_id=ADMIN)
        for user_id in (ADA, BOB, ADMIN, OTHER_BOT):
            fake.add_member(guild_id, user_id)
    fake.add_text_channel(KITCHEN, CHEF_ROOM, "chef")
    fake.add_text_channel(KITCHEN, PLAIN_ROOM, "plain")
    fake.add_text_channel(KITCHEN, LOUNGE, "lounge")
    fake.add_text_channel(GARDEN, GARDEN_CHEF, "chef")
    fake.add_text_channel(GARDEN, GARDEN_CHAT, "chat")
    fake.add_dm(ADA_DM, ADA)
    return fake


def runtime_settings(
    fake: FakeDiscord, model: FakeOpenAI, data_dir: Path, **overrides: Any
) -> Settings:
    """``python -m bot run``'s settings on the fake Discord and model: serving on a free
    loopback port, keeping its data in ``data_dir``, and ``overrides`` on top."""
    values: dict[str, Any] = {
        "discord_bot_token": fake.token,
        "discord_api_url": fake.api_url,
        "openai_base_url": model.base_url,
        "openai_api_key": "sk-test",
        "bot_data_dir": data_dir,
        "host": "127.0.0.1",
        "port": free_port(),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def world_agents() -> AgentsFile:
    """The chef (default) bound to both chef rooms, the plain agent (no goal) to its room."""
    return agents_file(
        chef(bindings={"discord": [str(CHEF_ROOM), str(GARDEN_CHEF)]}),
        plain(bindings={"discord": [str(PLAIN_ROOM)]}),
    )


@dataclass
class DiscordBot:
    """The product wired as ``python -m bot run`` wires it, with its Discord adapter running."""

    fake: FakeDiscord
    adapter: DiscordAdapter
    engine: Engine
    store: ConversationStore
    model: OpenAIModelClient
    stopped: bool = False

    @property
    def user_id(self) -> int:
        return int(self.fake.bot["id"])

    @property
    def mention(self) -> str:
        return f"<@{self.user_id}>"

    async def stop(self) -> None:
        """Stop in the runtime's order: the adapter, the engine, the model client, the store."""
        if self.stopped:
            return
        self.stopped = True
        try:
            await self.adapter.stop()
            await self.engine.aclose()
        finally:
            await self.model.close()
            await self.store.close()

    async def conversation(self, guild_id: int | None, channel_id: int) -> Conversation | None:
        workspace = "dm" if guild_id is None else str(guild_id)
        key = PlatformKey(platform="discord", workspace=workspace, channel=str(channel_id))
        return await self.store.find_conversation(key=key)


BotFactory = Callable[..., Awaitable[DiscordBot]]


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A running fake Discord with :func:`populate`'s world."""
    async with FakeDiscord() as fake:
        yield populate(fake)


@pytest.fixture
async def start_bot(
    fake_discord: FakeDiscord,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
) -> AsyncIterator[BotFactory]:
    """Starts the bot against the fakes; stops every bot it started. Bots share one SQLite
    file, so a second bot is the first one restarted.

    Settings reach the product only as settings (``DISCORD_API_URL`` and the token); keyword
    arguments are further settings (``discord_thread_on_mention=True``...). ``adapter`` holds
    further arguments of :class:`DiscordAdapter` (``on_failure``...); with ``start=False``
    the bot is returned unstarted (``await bot.adapter.start()`` is the test's).
    """
    bots: list[DiscordBot] = []

    async def start(
        *,
        agents: AgentsFile | None = None,
        fake: FakeDiscord | None = None,
        token: str | None = None,
        max_pending_turns: int = 10_000,
        adapter: dict[str, Any] | None = None,
        start: bool = True,
        telemetry: Telemetry | None = None,
        **settings: Any,
    ) -> DiscordBot:
        discord = fake or fake_discord
        store = SqliteStore(path=tmp_path / "discord.sqlite3")
        await store.open()
        model = OpenAIModelClient(
            api_key="sk-test", base_url=fake_openai.base_url, timeout=10, max_retries=0
        )
        engine = Engine(
            store=store,
            agents=agents or world_agents(),
            model=model,
            tokens=TokenCounter(),
            default_model="gpt-4o-mini",
            max_pending_turns=max_pending_turns,
            telemetry=telemetry,
        )
        options: dict[str, Any] = {
            "edit_interval": 0.05,
            "ready_timeout": 30.0,
            "guild_ready_timeout": 0.1,
            **(adapter or {}),
        }
        made = DiscordAdapter(
            settings=Settings(
                _env_file=None,  # type: ignore[call-arg]
                discord_bot_token=token or discord.token,
                discord_api_url=discord.api_url,
                **settings,
            ),
            engine=engine,
            **options,
        )
        bot = DiscordBot(fake=discord, adapter=made, engine=engine, store=store, model=model)
        bots.append(bot)
        if start:
            await made.start()
        return bot

    yield start
    for bot in reversed(bots):
        await bot.stop()


def replies_to(fake: FakeDiscord, channel_id: int, message: dict[str, Any]) -> list[dict[str, Any]]:
    """The bot's messages in the channel that reply to ``message``."""
    return [
        shown
        for shown in fake.bot_messages(channel_id)
        if (shown.get("message_reference") or {}).get("message_id") == message["id"]
    ]


async def answered(
    fake: FakeDiscord, channel_id: int, message: dict[str, Any], expect: str | None = None
) -> dict[str, Any]:
    """The bot's reply to ``message``, once it shows ``expect`` (a reply streams: it may be
    posted before it is complete), or once it is there at all."""

    def found() -> dict[str, Any] | None:
        shown = replies_to(fake, channel_id, message)
        if shown and (expect is None or shown[0]["content"] == expect):
            return shown[0]
        return None

    try:
        return await fake.wait_for(found)
    except TimeoutError:
        shown = [m["content"] for m in replies_to(fake, channel_id, message)]
        raise AssertionError(f"expected a reply {expect!r}; the bot shows {shown!r}") from None


async def answer(
    fake: FakeDiscord,
    channel_id: int,
    author: int,
    text: str,
    *,
    expect: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Say something that gets answered; returns the answer."""
    message = await fake.say(channel_id, author, text, **options)
    return await answered(fake, channel_id, message, expect)
