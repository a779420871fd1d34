"""``/agent memory`` on Slack, end to end in Socket Mode against the fake Slack: the answer is
an ephemeral response to the caller alone, about the caller alone. What the command says is
tested once in ``tests/bot/commands/test_memory.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.agents import AgentsFile
from memory.base import MemoryScope, PlatformKey
from tests.bot.commands.people import Seeder
from tests.support.agents import agents_file, chef, plain
from tests.support.fake_slack import TEAM, FakeSlack, new_ts
from tests.support.slack_bot import ADA, DM, OLU, Bot, BotFactory, responses

FOOTER = "Forget one: `/agent memory forget N`; all of them: `/agent memory forget all`."
ADA_CHEF = MemoryScope(platform="slack", workspace=TEAM, person=ADA, agent_id="chef")
IN_DM = {"channel": DM, "channel_name": "directmessage"}


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.sqlite3"


@pytest.fixture
def seeder(store_path: Path) -> Seeder:
    return Seeder(store_path)


def agents() -> AgentsFile:
    return agents_file(
        chef(memory={"extract": "inline"}),
        plain(),
        plain(id="tutor", name="Tutor", memory={"extract": "inline"}),
    )


async def answer(bot: Bot, fake: FakeSlack, text: str, **options: Any) -> dict[str, Any]:
    """The one response a ``/agent`` command got, which only the caller sees."""
    before = len(fake.responses)
    await bot.command(text, **options)
    await bot.settle()
    shown = (await responses(fake, before + 1))[before:]
    assert len(shown) == 1, shown
    assert shown[0].get("response_type", "ephemeral") == "ephemeral"
    return shown[0]


async def test_memory_shows_the_caller_only_their_own(
    start_slack: BotFactory, fake_slack: FakeSlack, seeder: Seeder, store_path: Path
) -> None:
    await seeder.remember(ADA_CHEF, "Is allergic to peanuts")
    await seeder.remember(ADA_CHEF, "Lives at <!channel> & co", private=True)
    await seeder.remember(ADA_CHEF.model_copy(update={"person": OLU}), "Olu hates garlic")
    await seeder.remember(ADA_CHEF.model_copy(update={"workspace": "T0OTHER"}), "Works at Acme")
    bot = await start_slack(agents=agents(), store_path=store_path)

    shown = await answer(bot, fake_slack, "memory")
    assert shown["text"] == (
        "What *Chef* remembers about you, newest first:\n"
        "1. Lives at &lt;!channel&gt; &amp; co _(from a direct message)_\n"
        "2. Is allergic to peanuts\n" + FOOTER
    )
    assert fake_slack.calls_to("chat.postMessage") == [], "nothing public"

    olus = await answer(bot, fake_slack, "memory", user=OLU)
    assert (
        olus["text"]
        == f"What *Chef* remembers about you, newest first:\n1. Olu hates garlic\n{FOOTER}"
    )


async def test_memory_forget_n_and_all(
    start_slack: BotFactory, fake_slack: FakeSlack, seeder: Seeder, store_path: Path
) -> None:
    await seeder.remember(ADA_CHEF, "Has two cats", "Is vegan", "Lives in Lyon")
    olu = ADA_CHEF.model_copy(update={"person": OLU})
    await seeder.remember(olu, "Olu hates garlic")
    bot = await start_slack(agents=agents(), store_path=store_path)

    forgot = await answer(bot, fake_slack, "memory forget 2")
    assert forgot["text"] == "Forgotten: “Is vegan”."
    listed = await answer(bot, fake_slack, "memory")
    assert listed["text"].splitlines()[1:3] == ["1. Lives in Lyon", "2. Has two cats"]

    wrong = await answer(bot, fake_slack, "memory forget 3")
    assert wrong["text"] == "There is no memory 3: `/agent memory` numbers them 1 to 2."
    typo = await answer(bot, fake_slack, "memory forget two")
    assert typo["text"].startswith("`two` is not a number")

    everything = await answer(bot, fake_slack, "memory forget all")
    assert everything["text"] == "Forgotten: all 2 memories about you."
    assert (await answer(bot, fake_slack, "memory"))["text"] == (
        "*Chef* remembers nothing about you yet."
    )
    olus = await answer(bot, fake_slack, "memory", user=OLU)
    assert "1. Olu hates garlic" in olus["text"], "another person's memories stay"


async def test_memory_of_an_agent_that_keeps_none(
    start_slack: BotFactory, fake_slack: FakeSlack, store_path: Path
) -> None:
    bot = await start_slack(agents=agents_file(plain(), chef()), store_path=store_path)
    shown = await answer(bot, fake_slack, "memory")
    assert shown["text"] == "*Plain* keeps no memories of people."


async def test_memory_with_anything_else_is_the_usage(
    start_slack: BotFactory, fake_slack: FakeSlack, store_path: Path
) -> None:
    bot = await start_slack(agents=agents(), store_path=store_path)
    envelope = await bot.command("memory of U0OLU")
    await bot.settle()
    assert envelope.ack_payload is not None
    usage = envelope.ack_payload["text"]
    assert usage.startswith("*Usage:*")
    assert "• `/agent memory [forget N|all]`: what the agent here remembers about you" in usage
    assert fake_slack.responses == []


async def test_memory_in_a_dm_is_about_its_latest_conversations_agent(
    start_slack: BotFactory, fake_slack: FakeSlack, seeder: Seeder, store_path: Path
) -> None:
    await seeder.remember(ADA_CHEF, "Told the chef")
    await seeder.remember(ADA_CHEF.model_copy(update={"agent_id": "tutor"}), "Told the tutor")
    bot = await start_slack(agents=agents(), store_path=store_path)
    assert (await answer(bot, fake_slack, "memory", **IN_DM))["text"].splitlines()[1] == (
        "1. Told the chef"
    ), "no conversation yet: the default agent"

    thread = PlatformKey(platform="slack", workspace=TEAM, channel=DM, thread=new_ts())
    await bot.engine.open_conversation(key=thread, agent_id="tutor")
    shown = await answer(bot, fake_slack, "memory", **IN_DM)
    assert shown["text"] == (
        f"What *Tutor* remembers about you, newest first:\n1. Told the tutor\n{FOOTER}"
    )
