"""What a module imports and whether it reads the environment or the clock, for purity tests."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

CLOCK_OWNERS = ("datetime", "time", "date")


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"))


def imported_modules(path: Path) -> set[str]:
    """Every module named in an import statement of the file (absolute imports)."""
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def reads_environment(path: Path) -> bool:
    return any(isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
               for node in ast.walk(_tree(path)))


def reads_clock(path: Path, clocks: Iterable[str]) -> bool:
    """True where the file calls e.g. `datetime.now` or `time.time` (names in `clocks`)."""
    clocks = set(clocks)
    return any(isinstance(node, ast.Attribute) and node.attr in clocks
               and isinstance(node.value, ast.Name) and node.value.id in CLOCK_OWNERS
               for node in ast.walk(_tree(path)))
