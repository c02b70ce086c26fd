"""The analytics core stays pure: only the standard library, numpy and scipy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import services.profiles.analytics as analytics

ALLOWED = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "itertools",
    "math",
    "numpy",
    "scipy",
    "statistics",
    "typing",
}
MODULES = sorted(Path(analytics.__file__).parent.glob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_analytics_module_is_checked():
    assert {p.stem for p in MODULES} >= {"attribution", "journeys", "lift"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_analytics_imports_no_adapter_clock_or_environment(path):
    assert imported_roots(path) <= ALLOWED
    source = path.read_text()
    for forbidden in ("datetime.now", "datetime.utcnow", "time.time", "os.environ"):
        assert forbidden not in source
