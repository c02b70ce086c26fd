"""Percentiles and run summaries."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from services.bench.stats import LatencySummary, RunResult, percentile


@pytest.mark.parametrize("values,q,expected", [
    ([1, 2, 3, 4], 50, 2),
    ([1, 2, 3, 4], 100, 4),
    ([1, 2, 3, 4], 0, 1),
    (list(range(1, 101)), 99, 99),
    (list(range(1, 1001)), 99, 990),
    ([7], 99, 7),
])
def test_nearest_rank_percentile(values, q, expected):
    assert percentile(values, q) == expected


def test_percentile_of_nothing_is_nan_and_bad_q_is_refused():
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_latency_summary_in_milliseconds():
    summary = LatencySummary.of([0.003, 0.001, 0.002, 0.010])
    assert summary.count == 4
    assert summary.p50_ms == pytest.approx(2)
    assert summary.p99_ms == pytest.approx(10)
    assert summary.mean_ms == pytest.approx(4)


def test_run_result_rates_and_errors():
    result = RunResult(mode="open", duration_s=2.0, target_rate=5, scheduled=10,
                       latencies_s=[0.01] * 9, statuses=Counter({202: 8, 503: 1}),
                       failures=Counter({"timeout": 1}), items_per_request=500)
    assert result.ok == 8
    assert result.errors == 2
    assert result.achieved_rate == 4
    assert result.items_per_s == 2000
    data = result.to_dict()
    assert data["statuses"] == {"202": 8, "503": 1}
    assert data["latency"]["p50_ms"] == pytest.approx(10)
