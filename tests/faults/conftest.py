"""Fault scenarios share a results file: `<pytest tmp>/reliability/fault-results.json`.

`touchpoint reliability-report --write` renders the table of `docs/reliability.md` from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.reliability.reconcile import ScenarioResult
from services.reliability.report import RESULTS_NAME
from tests.hostile.stack import admin_key


class FaultReport:
    def __init__(self, path: Path):
        self.path = path
        self.started = time.monotonic()
        self.scenarios: list[ScenarioResult] = []

    def add(self, result: ScenarioResult) -> None:
        print("\n" + result.summary())
        self.scenarios.append(result)
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.started, 1),
            "scenarios": [s.as_dict() for s in self.scenarios],
        }, indent=2) + "\n", "utf-8")


@pytest.fixture(scope="session")
def fault_report(tmp_path_factory) -> Iterator[FaultReport]:
    report = FaultReport(tmp_path_factory.getbasetemp() / "reliability" / RESULTS_NAME)
    yield report
    if report.scenarios:
        print(f"\nfault-injection results: {report.path}")


@pytest.fixture(scope="session")
def api_key_file(tmp_path_factory) -> tuple[Path, str]:
    return admin_key(tmp_path_factory.mktemp("fault-keys"))
