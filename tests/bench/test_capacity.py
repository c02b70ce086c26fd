"""The capacity model: processes, partitions and Redis from measured per-process figures."""

from __future__ import annotations

import pytest

from services.bench.capacity import Load, Measured, measured_from_results, plan

MEASURED = Measured(ingest_events_per_process=10_000, fold_events_per_process=5_000,
                    decisions_per_process=1_000, redis_bytes_per_customer=2048)


@pytest.mark.parametrize("load,expected", [
    # 5,000 events/s at 2x headroom: 1 ingestion, 2 consumers, 4 recommenders for 2,000/s.
    (Load(10_000_000, 5_000, 2_000),
     {"ingestion_processes": 1, "profile_consumers": 2, "recommender_processes": 4,
      "partitions": 12, "redis_shards": 1}),
    # Ten times that: partitions follow the consumers, Redis needs a cluster.
    (Load(100_000_000, 50_000, 20_000),
     {"ingestion_processes": 10, "profile_consumers": 20, "recommender_processes": 40,
      "partitions": 64, "redis_shards": 10}),  # 248 GiB / 25 GiB per shard
])
def test_plan(load, expected):
    deployment = plan(MEASURED, load)
    for name, value in expected.items():
        assert getattr(deployment, name) == value, name


def test_memory_includes_overhead():
    deployment = plan(MEASURED, Load(10_000_000, 1, 1))
    assert deployment.redis_memory_gib == pytest.approx(10_000_000 * 2048 * 1.3 / 2**30, 0.01)


def test_redis_server_time_per_event_adds_shards():
    costly = Measured(ingest_events_per_process=10_000, fold_events_per_process=5_000,
                      decisions_per_process=1_000, redis_bytes_per_customer=100,
                      redis_us_per_event=270)
    # 5,000 events/s x 270 us = 1.35 Redis cores; at 2x headroom: 3 shards.
    deployment = plan(costly, Load(1_000_000, 5_000, 0))
    assert deployment.redis_cores == pytest.approx(1.35)
    assert deployment.redis_shards == 3


def test_decisions_per_process_divide_the_rate_by_the_recommender_workers():
    document = {
        "scenarios": [
            {"name": "batch_ingest", "value": 10_000},
            {"name": "consumer_fold", "value": 4_000},
            {"name": "memory_per_customer", "value": 3_000},
            {"name": "recommend_20", "data": {"max_rate": {"achieved_rate": 1_300}}},
        ],
        "ceilings": {},
    }
    assert measured_from_results(document).decisions_per_process == 1_300
    document["recommender_workers"] = 2
    assert measured_from_results(document).decisions_per_process == 650
