"""The import-layer contract: the real tree keeps it, and a planted upward import fails it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.layers import check

REPO = Path(__file__).resolve().parents[1]


def tree(root: Path, files: dict[str, str]) -> Path:
    """A small Parley-shaped package tree: the four packages, then ``files`` over them."""
    base = {
        "bot/__init__.py": "",
        "bot/errors.py": "class ParleyError(Exception): ...\n",
        "bot/engine.py": "import memory.store\nfrom config import settings\n",
        "bot/cli.py": "import adapters.slack\nimport bot.runtime\n",
        "bot/runtime.py": "from adapters import slack\nfrom bot import engine\n",
        "adapters/__init__.py": "",
        "adapters/slack.py": "from bot.engine import run\nfrom memory import store\n",
        "memory/__init__.py": "",
        "memory/store.py": "from bot.errors import ParleyError\nimport config.settings\n",
        "config/__init__.py": "",
        "config/settings.py": "from bot.errors import ParleyError\n",
    }
    for name, text in (base | files).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_repository_keeps_its_layers() -> None:
    assert check(REPO) == []


def test_the_allowed_directions_pass(tmp_path: Path) -> None:
    assert check(tree(tmp_path, {})) == []


@pytest.mark.parametrize(
    ("name", "text", "importer", "imported"),
    [
        ("bot/engine.py", "import adapters.slack\n", "bot.engine", "adapters.slack"),
        ("bot/engine.py", "from bot.cli import main\n", "bot.engine", "bot.cli"),
        ("adapters/slack.py", "from bot import runtime\n", "adapters.slack", "bot.runtime"),
        ("memory/store.py", "from bot.engine import run\n", "memory.store", "bot.engine"),
        ("memory/store.py", "from adapters import slack\n", "memory.store", "adapters.slack"),
        ("config/settings.py", "import bot.engine\n", "config.settings", "bot.engine"),
        # the common ground may not pull a layer in behind the lower layers' backs
        ("bot/errors.py", "from memory import store\n", "bot.errors", "memory.store"),
        # lazy and type-only imports couple all the same
        ("memory/store.py", "def f():\n    import bot.engine\n", "memory.store", "bot.engine"),
        (
            "config/settings.py",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from adapters.slack import X\n",
            "config.settings",
            "adapters.slack",
        ),
        # relative imports are resolved against the importer's package
        ("bot/engine.py", "from ..adapters import slack\n", "bot.engine", "adapters.slack"),
        ("bot/engine.py", "from .cli import main\n", "bot.engine", "bot.cli"),
    ],
)
def test_a_planted_upward_import_is_caught(
    tmp_path: Path, name: str, text: str, importer: str, imported: str
) -> None:
    violations = check(tree(tmp_path, {name: text}))
    assert [(v.importer, v.imported, str(v.path)) for v in violations] == [
        (importer, imported, name)
    ]


def test_make_lint_s_command_fails_on_a_planted_upward_import(tmp_path: Path) -> None:
    """``make lint`` runs ``python -m tests.layers``: exit 1 and the import named."""
    clean = subprocess.run(
        [sys.executable, "-m", "tests.layers", str(tree(tmp_path / "clean", {}))],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (clean.returncode, clean.stderr) == (0, "")

    planted = tree(tmp_path / "planted", {"memory/store.py": "from adapters.slack import X\n"})
    result = subprocess.run(
        [sys.executable, "-m", "tests.layers", str(planted)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "memory/store.py:1: memory.store (memory) imports adapters.slack (adapters)" in (
        result.stderr
    )


def test_make_lint_runs_the_layer_check() -> None:
    makefile = (REPO / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "-m tests.layers" in lint
