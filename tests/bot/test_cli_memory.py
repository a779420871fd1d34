"""``python -m bot memory list|forget`` as an operator runs it: a plain process on the store
the settings name, with memories seeded straight into that store."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memory.base import Memory, MemoryQuery, MemoryScope
from memory.sqlite import SqliteStore
from tests.bot.commands.people import Seeder
from tests.support.process import REPO, bot_environment

ADA = MemoryScope(platform="slack", workspace="T1", person="U_ADA", agent_id="chef")
BOB = ADA.model_copy(update={"person": "U_BOB"})
ADA_TUTOR = ADA.model_copy(update={"agent_id": "tutor"})
ADA_SHARED = ADA.model_copy(update={"agent_id": ""})
ADA_DISCORD = MemoryScope(platform="discord", workspace="G1", person="U_ADA", agent_id="chef")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    return tmp_path


def store_path(workdir: Path) -> Path:
    return workdir / "data" / "parley.sqlite3"


@pytest.fixture
def seeder(workdir: Path) -> Seeder:
    return Seeder(store_path(workdir))


def bot(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=workdir,
        env=bot_environment(workdir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def remaining(workdir: Path) -> list[str]:
    store = SqliteStore(path=store_path(workdir))
    await store.open()
    try:
        found = await store.list_memories(MemoryQuery(include_superseded=True))
    finally:
        await store.close()
    return sorted(memory.text for memory in found)


def ids_listed(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()]


async def test_memory_list_prints_one_line_per_memory_with_its_filters(
    workdir: Path, seeder: Seeder
) -> None:
    (paris,) = await seeder.remember(ADA, "Lives in Paris")
    (berlin,) = await seeder.remember(ADA, "Lives in\nBerlin", supersedes=paris.id)
    (secret,) = await seeder.remember(ADA, "Is pregnant", private=True)
    (bobs,) = await seeder.remember(BOB, "Hates garlic")
    (tutor,) = await seeder.remember(ADA_TUTOR, "Knows algebra")
    (shared,) = await seeder.remember(ADA_SHARED, "Prefers short answers")
    (discord,) = await seeder.remember(ADA_DISCORD, "Plays the cello")

    everything = bot(workdir, "memory", "list")
    assert everything.returncode == 0, everything.stderr
    assert ids_listed(everything.stdout) == [
        m.id for m in (discord, shared, tutor, bobs, secret, berlin)
    ], "newest first, superseded ones left out"
    lines = everything.stdout.splitlines()
    assert lines[-1] == line(berlin, "slack/T1/U_ADA  agent=chef  -  Lives in Berlin")
    assert lines[-2] == line(secret, "slack/T1/U_ADA  agent=chef  private  Is pregnant")
    assert lines[1] == line(shared, "slack/T1/U_ADA  shared  -  Prefers short answers")

    ada_chef = bot(
        workdir, "memory", "list", "--platform", "slack", "--workspace", "T1", "--person", "U_ADA",
        "--agent", "chef", "--all",
    )  # fmt: skip
    assert ada_chef.returncode == 0, ada_chef.stderr
    assert ids_listed(ada_chef.stdout) == [secret.id, berlin.id, paris.id]
    assert ada_chef.stdout.splitlines()[-1] == line(
        paris, f"slack/T1/U_ADA  agent=chef  - superseded-by={berlin.id}  Lives in Paris"
    )

    shared_only = bot(workdir, "memory", "list", "--agent", "", "--limit", "5")
    assert ids_listed(shared_only.stdout) == [shared.id]
    by_text = bot(workdir, "memory", "list", "--text", "LIVES", "--limit", "1", "--all")
    assert ids_listed(by_text.stdout) == [berlin.id]
    on_discord = bot(workdir, "memory", "list", "--platform", "discord")
    assert ids_listed(on_discord.stdout) == [discord.id]
    nothing = bot(workdir, "memory", "list", "--person", "U_NOBODY")
    assert (nothing.returncode, nothing.stdout) == (0, "No memories match.\n")


def line(memory: Memory, rest: str) -> str:
    return f"{memory.id}  {memory.created_at:%Y-%m-%d %H:%M:%S}  {rest}"


async def test_memory_forget_by_id(workdir: Path, seeder: Seeder) -> None:
    one, two, three = await seeder.remember(ADA, "One", "Two", "Three")
    result = bot(workdir, "memory", "forget", one.id, three.id, "f" * 32)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Deleted 2 memories (1 not found).\n"
    assert await remaining(workdir) == ["Two"]
    again = bot(workdir, "memory", "forget", two.id)
    assert again.stdout == "Deleted 1 memory.\n"


async def test_memory_forget_a_persons_scope(workdir: Path, seeder: Seeder) -> None:
    (paris,) = await seeder.remember(ADA, "Lives in Paris")
    await seeder.remember(ADA, "Lives in Berlin", supersedes=paris.id)
    await seeder.remember(BOB, "Bob's")
    await seeder.remember(ADA_TUTOR, "The tutor's")
    await seeder.remember(ADA_SHARED, "Shared")
    await seeder.remember(ADA_DISCORD, "On Discord")
    whose = ("--platform", "slack", "--workspace", "T1", "--person", "U_ADA")

    chef = bot(workdir, "memory", "forget", *whose, "--agent", "chef")
    assert chef.returncode == 0, chef.stderr
    assert chef.stdout == "Deleted 2 memories.\n", "history included"
    assert await remaining(workdir) == ["Bob's", "On Discord", "Shared", "The tutor's"]

    shared = bot(workdir, "memory", "forget", *whose, "--shared")
    assert shared.stdout == "Deleted 1 memory.\n"
    assert await remaining(workdir) == ["Bob's", "On Discord", "The tutor's"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give memory ids, or --platform and --person (and --agent or --shared)"),
        (("--platform", "slack", "--person", "U_ADA"), "say whose: --agent ID"),
        (("--person", "U_ADA", "--agent", "chef"), "give memory ids, or --platform and --person"),
        (("0" * 32, "--platform", "slack"), "give memory ids, or --platform and --person, not"),
        (("--platform", "slack", "--person", "x" * 200, "--agent", "c"), "--person: String should"),
    ],
)
async def test_memory_forget_refuses_unclear_requests(
    workdir: Path, seeder: Seeder, args: tuple[str, ...], says: str
) -> None:
    await seeder.remember(ADA, "Kept")
    result = bot(workdir, "memory", "forget", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"parley: memory forget: {says}")
    assert result.stdout == ""
    assert await remaining(workdir) == ["Kept"]


def test_memory_usage_errors(workdir: Path) -> None:
    both = bot(workdir, "memory", "forget", "--agent", "chef", "--shared")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    limit = bot(workdir, "memory", "list", "--limit", "0")
    assert limit.returncode == 2
    assert "argument --limit: must be 1 to 1000" in limit.stderr
    platform = bot(workdir, "memory", "list", "--platform", "telegram")
    assert platform.returncode == 2
    assert "invalid choice: 'telegram'" in platform.stderr
