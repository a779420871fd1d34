"""``python -m bot usage`` as an operator runs it: a plain process on the store the settings
name, with usage seeded straight into that store and prices in a file."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory.base import NewUsage
from memory.sqlite import SqliteStore
from tests.support.process import REPO, run_bot

DAY_1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY_2 = datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture
async def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    (tmp_path / "prices.yaml").write_text(
        "models:\n  gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60}\n",
        encoding="utf-8",
    )
    store = SqliteStore(path=tmp_path / "data" / "parley.sqlite3")
    await store.open()
    try:
        await store.add_usage(
            [
                NewUsage(
                    at=DAY_1,
                    agent_id="chef",
                    purpose="reply",
                    model="gpt-4o-mini",
                    input_tokens=1_000_000,
                    cached_input_tokens=0,
                    output_tokens=1_000_000,
                ),
                NewUsage(
                    at=DAY_2,
                    agent_id="tutor",
                    purpose="goal_check",
                    model="house-llm",
                    input_tokens=10,
                    output_tokens=5,
                    estimated=True,
                ),
            ]
        )
    finally:
        await store.close()
    return tmp_path


async def test_usage_by_agent_with_cost(workdir: Path) -> None:
    done = await run_bot(workdir, "usage", PRICES_FILE="prices.yaml")
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0] == "Usage from the start to now, by agent:"
    assert lines[1] == (
        "agent=chef: 1 call, 1,000,000 in (0 cached), 1,000,000 out, cost 0.7500 USD"
    )
    assert lines[2] == (
        "agent=tutor: 1 call, 10 in (0 cached), 5 out, cost unknown, 1 estimated"
        " (no price for house-llm)"
    )
    assert lines[3].startswith(
        "total: 2 calls, 1,000,010 in (0 cached), 1,000,005 out, cost unknown"
    )


async def test_usage_filtered_by_time_and_grouped_by_day(workdir: Path) -> None:
    done = await run_bot(
        workdir, "usage", "--from", "2026-03-02", "--to", "2026-03-03", "--by", "day,purpose"
    )
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0] == (
        "Usage from 2026-03-02T00:00:00+00:00 to 2026-03-03T00:00:00+00:00, by day, purpose:"
    )
    assert lines[1].startswith("day=2026-03-02 purpose=goal_check: 1 call, 10 in")
    assert len(lines) == 3


async def test_bad_options_are_one_clear_line(workdir: Path) -> None:
    done = await run_bot(workdir, "usage", "--by", "weather")
    assert done.code == 2
    assert "'weather' is not a grouping" in done.err
    done = await run_bot(workdir, "usage", "--from", "yesterday")
    assert done.code == 2
    assert "is not a date or time" in done.err
    done = await run_bot(workdir, "usage", PRICES_FILE="missing.yaml")
    assert done.code == 2
    assert done.err.strip() == "parley: missing.yaml: file not found (set PRICES_FILE or create it)"
