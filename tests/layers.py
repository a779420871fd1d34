"""The import-layer contract, checked by ``make lint`` (``python -m tests.layers``).

- the shell (``bot/cli.py``, ``bot/runtime.py``, ``bot/__main__.py``) may import everything;
- adapters import the core, memory and config, never the shell;
- the core (the rest of ``bot/``) imports memory and config, never adapters or the shell;
- memory and config import neither the core nor adapters, except ``bot.errors``: the one
  exception root every layer raises from. It is their common ground, so it may import
  nothing of Parley's itself.

``bench/`` and ``tests/`` stand outside the contract. Every import statement counts: at the
top, inside functions (the lazy ones) and under ``TYPE_CHECKING``, since each one ties the
importer to the imported module all the same.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("bot", "adapters", "memory", "config")
SHELL = frozenset({"bot.cli", "bot.runtime", "bot.__main__"})
SHARED = frozenset({"bot.errors"})
"""Modules of an upper layer that the lower layers may import (and that import no layer)."""

ALLOWED = {
    "shell": {"shell", "adapters", "core", "memory", "config"},
    "adapters": {"adapters", "core", "memory", "config"},
    "core": {"core", "memory", "config"},
    "memory": {"memory", "config"},
    "config": {"memory", "config"},
}


@dataclass(frozen=True, slots=True)
class Violation:
    path: Path
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.importer} ({layer_of(self.importer)}) "
            f"imports {self.imported} ({layer_of(self.imported)})"
        )


def layer_of(module: str) -> str:
    if module in SHELL:
        return "shell"
    top = module.split(".", 1)[0]
    return "core" if top == "bot" else top


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(
    tree: ast.AST, module: str, is_package: bool, known: set[str]
) -> Iterator[tuple[int, str]]:
    """Every Parley module an import statement names, as (line, dotted name)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in known else base


def check(root: Path) -> list[Violation]:
    """Every import in ``root``'s four packages that breaks the contract."""
    files = {
        _module_name(root, path): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }
    known = set(files)
    violations: list[Violation] = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, imported in _imports(tree, module, path.name == "__init__.py", known):
            if imported.split(".", 1)[0] not in PACKAGES or imported == module:
                continue
            if module in SHARED:
                allowed = False  # the common ground imports no layer at all
            elif imported in SHARED:
                allowed = True
            else:
                allowed = layer_of(imported) in ALLOWED[layer_of(module)]
            if not allowed:
                violations.append(Violation(path.relative_to(root), line, module, imported))
    return violations


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    violations = check(root)
    for violation in violations:
        print(violation, file=sys.stderr)  # noqa: T201 - a command-line check
    if violations:
        print(  # noqa: T201 - a command-line check
            f"{len(violations)} import(s) break the layers (see tests/layers.py)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
