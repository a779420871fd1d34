"""``python -m bot knowledge sync|list`` as an operator runs it: a plain process indexing the
files the agents file names, into the store the settings name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.agents import chef
from tests.support.documents import tiny_pdf
from tests.support.process import bot_environment


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


def test_sync_indexes_the_named_files_and_list_shows_them(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "pasta.md").write_text("Boil pasta in salted water.\n")
    (tmp_path / "docs" / "menu.pdf").write_bytes(tiny_pdf("Saffron risotto on Fridays"))
    agents = {"agents": [chef(knowledge=["docs", "gone.md"])]}
    (tmp_path / "agents.yaml").write_text(yaml.safe_dump(agents))

    first = bot(tmp_path, "knowledge", "sync")
    assert first.returncode == 1, first.stderr
    assert first.stdout.strip() == "knowledge: 2 indexed, 0 unchanged, 0 removed, 1 failed"
    assert "parley: chef: gone.md: no such file or folder" in first.stderr

    listed = bot(tmp_path, "knowledge", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split("  ")[:3] for line in lines] == [
        ["chef", "docs/menu.pdf", "file"],
        ["chef", "docs/pasta.md", "file"],
    ]

    (tmp_path / "agents.yaml").write_text(yaml.safe_dump({"agents": [chef(knowledge=["docs"])]}))
    again = bot(tmp_path, "knowledge", "sync")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "knowledge: 0 indexed, 2 unchanged, 0 removed, 0 failed"
