"""Latency and rate statistics of a load run (pure)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; NaN when empty."""
    if not sorted_values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, latencies_s: Sequence[float]) -> LatencySummary:
        values = sorted(latencies_s)
        mean = sum(values) / len(values) if values else math.nan
        return cls(
            count=len(values),
            p50_ms=percentile(values, 50) * 1000,
            p90_ms=percentile(values, 90) * 1000,
            p99_ms=percentile(values, 99) * 1000,
            max_ms=(values[-1] if values else math.nan) * 1000,
            mean_ms=mean * 1000,
        )


@dataclass
class RunResult:
    """What one load run did: requests scheduled and completed, latencies, statuses."""

    mode: str  # "open" (fixed rate) or "closed" (as fast as the connections allow)
    duration_s: float
    target_rate: float | None = None
    scheduled: int = 0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    # How late the generator dispatched requests (timer resolution, its own CPU starvation).
    max_dispatch_lag_s: float = 0.0
    dispatch_lag_sum_s: float = 0.0
    items_per_request: int = 1
    generator_cpu_s: float = 0.0  # CPU the load generator's process used during the run

    @property
    def completed(self) -> int:
        return len(self.latencies_s)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        # Scheduled but not answered with 2xx: error statuses, transport failures, timeouts.
        return self.scheduled - self.ok

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def items_per_s(self) -> float:
        return self.achieved_rate * self.items_per_request

    def latency(self) -> LatencySummary:
        return LatencySummary.of(self.latencies_s)

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "duration_s": round(self.duration_s, 3),
            "target_rate": self.target_rate,
            "scheduled": self.scheduled,
            "completed": self.completed,
            "ok": self.ok,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "achieved_rate": round(self.achieved_rate, 1),
            "items_per_request": self.items_per_request,
            "items_per_s": round(self.items_per_s, 1),
            "generator_cpu_us_per_request": round(
                self.generator_cpu_s / self.scheduled * 1e6, 1) if self.scheduled else None,
            "max_dispatch_lag_ms": round(self.max_dispatch_lag_s * 1000, 2),
            "mean_dispatch_lag_ms": round(
                self.dispatch_lag_sum_s / self.scheduled * 1000, 3) if self.scheduled else None,
            "latency": {k: _rounded(v) for k, v in asdict(self.latency()).items()},
        }


def _rounded(value: float) -> float | int | None:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value
