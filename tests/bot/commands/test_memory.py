"""``/agent memory``, once, for every platform: whose memories it shows and forgets, its
numbering, and its lines. The platforms' tests only check how Slack and Discord show them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from adapters.terminal import TerminalAdapter, TerminalSession
from bot.commands import (
    PERMISSIONS,
    AgentCommands,
    Caller,
    Command,
    Outcome,
    Refused,
    Said,
    parse,
)
from bot.engine import Engine
from memory.base import MemoryQuery, MemoryScope, PlatformKey
from tests.bot.commands.people import Seeder
from tests.support.agents import agents_file, chef, plain
from tests.support.engines import EngineFactory

TEAM, OTHER_TEAM = "T1", "T2"
ADA, BOB = "U_ADA", "U_BOB"
CHANNEL = PlatformKey(platform="slack", workspace=TEAM, channel="C1")
ADA_CHEF = MemoryScope(platform="slack", workspace=TEAM, person=ADA, agent_id="chef")
FOOTER = "Forget one: `/agent memory forget N`; all of them: `/agent memory forget all`."


def remembering(**overrides: object) -> dict[str, object]:
    return {"memory": {"extract": "inline"}, **overrides}


@pytest.fixture
def engine(make_engine: EngineFactory) -> Engine:
    """The chef remembers people, the plain agent does not, the tutor shares its memories
    with every agent that shares them."""
    return make_engine(
        agents_file(
            chef(**remembering()),
            plain(),
            plain(id="tutor", name="Tutor", memory={"extract": "inline", "shared": True}),
        )
    )


@pytest.fixture
def seeder(tmp_path: Path) -> Seeder:
    return Seeder(tmp_path / "engine.sqlite3")  # the file the engine's store uses


async def memory(
    engine: Engine, argument: str = "", *, who: str = ADA, key: PlatformKey = CHANNEL
) -> Outcome:
    return await AgentCommands(engine).run(Command("memory", argument), Caller(key, who))


async def texts(engine: Engine, scope: MemoryScope, *, everything: bool = False) -> list[str]:
    found = await engine.store.list_memories(
        MemoryQuery(
            platform=scope.platform,
            workspace=scope.workspace,
            person=scope.person,
            agent_id=scope.agent_id,
            include_superseded=everything,
        )
    )
    return [one.text for one in found]


def test_everyone_may_ask_about_themselves_anywhere() -> None:
    rule = PERMISSIONS["memory"]
    assert (rule.who, rule.needs_conversation, rule.confirm, rule.in_dm) == (
        "anyone",
        False,
        False,
        True,
    )


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("memory", Command("memory")),
        ("MEMORY forget 2", Command("memory", "forget 2")),
        ("memory forget All", Command("memory", "forget all")),
        ("memory forget `3`", Command("memory", "forget 3")),
        ("memory forget", Command("memory", "forget")),
        ("memory forget x", Command("memory", "forget x")),
        ("memory forget 1 2", None),
        ("memory of Bob", None),
        ("memory U_BOB", None),
    ],
)
def test_parse_memory(text: str, command: Command | None) -> None:
    assert parse(text) == command


async def test_the_listing_is_the_callers_own_newest_first(engine: Engine, seeder: Seeder) -> None:
    await seeder.remember(ADA_CHEF, "Is allergic to peanuts", "Has two cats")
    await seeder.remember(ADA_CHEF, "Is pregnant", private=True)  # told in a DM
    await seeder.remember(ADA_CHEF.model_copy(update={"person": BOB}), "Bob hates garlic")
    await seeder.remember(ADA_CHEF.model_copy(update={"workspace": OTHER_TEAM}), "Works at Acme")
    await seeder.remember(ADA_CHEF.model_copy(update={"agent_id": "other"}), "Another agent's")
    await seeder.remember(ADA_CHEF.model_copy(update={"platform": "discord"}), "On Discord")

    shown = await memory(engine)
    assert shown == Said(
        "What **Chef** remembers about you, newest first:\n"
        "1. Is pregnant _(from a direct message)_\n"
        "2. Has two cats\n"
        "3. Is allergic to peanuts\n" + FOOTER
    )
    assert shown.private

    bobs = await memory(engine, who=BOB)
    assert bobs == Said(
        f"What **Chef** remembers about you, newest first:\n1. Bob hates garlic\n{FOOTER}"
    )
    elsewhere = PlatformKey(platform="slack", workspace=OTHER_TEAM, channel="C1")
    assert "Works at Acme" in str(await memory(engine, key=elsewhere))
    nobody = await memory(engine, who="U_NEW")
    assert nobody == Said("**Chef** remembers nothing about you yet.")


async def test_the_listing_is_bounded_and_says_how_many_more(
    engine: Engine, seeder: Seeder
) -> None:
    await seeder.remember(ADA_CHEF, *(f"Fact {n}" for n in range(1, 24)))
    shown = await memory(engine)
    assert isinstance(shown, Said)
    lines = shown.text.splitlines()
    assert lines[1] == "1. Fact 23"
    assert lines[20] == "20. Fact 4"
    assert lines[21] == "…and 3 more (forget some to see them)."
    assert await memory(engine, "forget 21") == Refused(
        "There is no memory 21: `/agent memory` numbers them 1 to 20."
    )


async def test_long_memories_are_cut_to_one_line(engine: Engine, seeder: Seeder) -> None:
    await seeder.remember(ADA_CHEF, "Likes " + "very " * 70 + "spicy food")
    shown = await memory(engine)
    assert isinstance(shown, Said)
    line = shown.text.splitlines()[1]
    assert line.startswith("1. Likes very very")
    assert line.endswith("…")
    assert len(line) == len("1. ") + 200


async def test_forget_n_deletes_the_nth_listed_and_what_it_replaced(
    engine: Engine, seeder: Seeder
) -> None:
    (paris,) = await seeder.remember(ADA_CHEF, "Lives in Paris")
    await seeder.remember(ADA_CHEF, "Lives in Berlin", supersedes=paris.id)
    await seeder.remember(ADA_CHEF, "Has two cats")
    bob = ADA_CHEF.model_copy(update={"person": BOB})
    await seeder.remember(bob, "Lives in Berlin")

    assert await memory(engine, "forget 2") == Said("Forgotten: “Lives in Berlin”.")
    assert await texts(engine, ADA_CHEF, everything=True) == ["Has two cats"], (
        "the fact it had replaced goes with it"
    )
    assert await texts(engine, bob) == ["Lives in Berlin"], "only the caller's"

    assert await memory(engine, "forget 1") == Said("Forgotten: “Has two cats”.")
    assert await texts(engine, ADA_CHEF, everything=True) == []
    assert await memory(engine, "forget 1") == Refused(
        "There is no memory 1: I remember nothing about you here."
    )


async def test_forget_all_deletes_only_the_callers_memories_in_this_scope(
    engine: Engine, seeder: Seeder
) -> None:
    (old,) = await seeder.remember(ADA_CHEF, "Lives in Paris")
    await seeder.remember(ADA_CHEF, "Lives in Berlin", supersedes=old.id)
    await seeder.remember(ADA_CHEF, "Is vegan", private=True)
    bob = ADA_CHEF.model_copy(update={"person": BOB})
    elsewhere = ADA_CHEF.model_copy(update={"workspace": OTHER_TEAM})
    shared = ADA_CHEF.model_copy(update={"agent_id": ""})
    for scope in (bob, elsewhere, shared):
        await seeder.remember(scope, "Kept")

    assert await memory(engine, "forget all") == Said("Forgotten: all 3 memories about you.")
    assert await texts(engine, ADA_CHEF, everything=True) == []
    for scope in (bob, elsewhere, shared):
        assert await texts(engine, scope) == ["Kept"]
    assert await memory(engine, "forget all") == Said(
        "There was nothing to forget: I remember nothing about you here."
    )


@pytest.mark.parametrize(
    ("argument", "line"),
    [
        (
            "forget",
            "Say which: `/agent memory forget N` with N from `/agent memory`, or `forget all`.",
        ),
        (
            "forget x",
            "`x` is not a number: use `/agent memory forget N` with N from `/agent memory`, or "
            "`forget all`.",
        ),
        (
            "forget -1",
            "`-1` is not a number: use `/agent memory forget N` with N from `/agent memory`, or "
            "`forget all`.",
        ),
        ("forget 0", "There is no memory 0: `/agent memory` numbers them 1 to 2."),
        ("forget 3", "There is no memory 3: `/agent memory` numbers them 1 to 2."),
        (
            "forget 99999999999999999999",
            "There is no memory 99999999999999999999: `/agent memory` numbers them 1 to 2.",
        ),
        (
            "dance",
            "Say which: `/agent memory forget N` with N from `/agent memory`, or `forget all`.",
        ),
    ],
)
async def test_bad_input_is_one_clear_line_and_deletes_nothing(
    engine: Engine, seeder: Seeder, argument: str, line: str
) -> None:
    await seeder.remember(ADA_CHEF, "Has two cats", "Is vegan")
    assert await memory(engine, argument) == Refused(line)
    assert await texts(engine, ADA_CHEF) == ["Is vegan", "Has two cats"]


async def test_an_agent_without_memory_says_so_in_one_line(engine: Engine, seeder: Seeder) -> None:
    await seeder.remember(ADA_CHEF.model_copy(update={"agent_id": "plain"}), "Has two cats")
    await engine.bind_channel(platform="slack", workspace=TEAM, channel="C1", agent_id="plain")
    off = Said("**Plain** keeps no memories of people.")
    assert await memory(engine) == off
    assert await memory(engine, "forget all") == off
    assert await texts(engine, ADA_CHEF.model_copy(update={"agent_id": "plain"})) == [
        "Has two cats"
    ]


async def test_the_agent_here_decides_whose_memories(engine: Engine, seeder: Seeder) -> None:
    """The agent of the conversation here, else the channel's; a sharing agent shows the
    memories all sharing agents keep."""
    await seeder.remember(ADA_CHEF, "Told the chef")
    await seeder.remember(ADA_CHEF.model_copy(update={"agent_id": ""}), "Told everyone")
    thread = CHANNEL.model_copy(update={"thread": "1700000000.000100"})
    await engine.open_conversation(key=thread, agent_id="tutor")

    in_thread = await memory(engine, key=thread)
    assert in_thread == Said(
        f"What the agents here remember about you, newest first:\n1. Told everyone\n{FOOTER}"
    )
    in_channel = await memory(engine)
    assert isinstance(in_channel, Said)
    assert in_channel.text.splitlines()[1] == "1. Told the chef"


async def test_in_the_terminal(engine: Engine, seeder: Seeder) -> None:
    """The terminal's person is its author; hints use its own prefix."""
    here = MemoryScope(platform="console", person="Ada", agent_id="chef")
    await seeder.remember(here, "Has two cats", "Is vegan")
    session = TerminalSession(engine, name="dinner", author="Ada")
    out = io.StringIO()
    typed = io.StringIO("/memory\n/memory forget 2\n/memory forget two\n/memory\n")
    await TerminalAdapter(session, stdin=typed, stdout=out, interactive=False).run()
    assert out.getvalue() == (
        "What **Chef** remembers about you, newest first:\n"
        "1. Is vegan\n"
        "2. Has two cats\n"
        "Forget one: `/memory forget N`; all of them: `/memory forget all`.\n"
        "Forgotten: “Has two cats”.\n"
        "`two` is not a number: use `/memory forget N` with N from `/memory`, or `forget all`.\n"
        "What **Chef** remembers about you, newest first:\n"
        "1. Is vegan\n"
        "Forget one: `/memory forget N`; all of them: `/memory forget all`.\n"
    )
