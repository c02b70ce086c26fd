"""The pure core of the profile service imports no adapter (Redis, Kafka, FastAPI, clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.purity import imported_modules

ROOT = Path(__file__).resolve().parents[2]
PURE = ["services/profiles/fold.py", "services/profiles/view.py",
        "services/profiles/decoding.py", "shared/features.py", "shared/redis_keys.py"]
FORBIDDEN = ("redis", "kafka", "fastapi", "starlette", "confluent_kafka", "services.profiles.store",
             "services.profiles.consumer", "services.streaming", "os", "time")


imported = imported_modules


@pytest.mark.parametrize("relative", PURE)
def test_pure_modules_import_no_adapter(relative):
    bad = {name for name in imported(ROOT / relative)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{relative} imports {sorted(bad)}"


@pytest.mark.parametrize("relative", PURE)
def test_pure_modules_do_not_read_the_clock(relative):
    text = (ROOT / relative).read_text()
    assert "datetime.now(" not in text and "utcnow(" not in text
