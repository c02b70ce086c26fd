"""From measured per-process figures to a deployment size (pure; `docs/capacity.md`)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    """Per-process rates and per-customer memory taken from a benchmark run."""

    ingest_events_per_process: float  # batched ingest, events/s, one ingestion process
    fold_events_per_process: float  # one profile consumer process
    decisions_per_process: float  # recommendations/s one recommender process sustains
    redis_bytes_per_customer: float
    redis_ops_per_event: float = 4.0  # commands per folded event (scripts, aggregates)
    redis_ops_per_decision: float = 4.0  # profile read, rate limit, outreach write
    redis_us_per_event: float = 0.0  # Redis server time per folded event (command stats)


@dataclass(frozen=True)
class Load:
    customers: int
    events_per_s: float
    decisions_per_s: float


@dataclass(frozen=True)
class Deployment:
    ingestion_processes: int
    profile_consumers: int
    recommender_processes: int
    partitions: int
    redis_memory_gib: float
    redis_shards: int
    redis_ops_per_s: float
    redis_cores: float = 0.0


def plan(measured: Measured, load: Load, headroom: float = 2.0,
         redis_shard_gib: float = 25.0, redis_shard_ops: float = 100_000) -> Deployment:
    """Processes at `headroom` x the load (peaks, a failed node, rebalancing), partitions so
    consumers can grow to twice the planned count, Redis sized for memory, operations and,
    when measured, the server time the fold costs (a Redis shard is one core)."""
    ingestion = math.ceil(load.events_per_s * headroom / measured.ingest_events_per_process)
    consumers = math.ceil(load.events_per_s * headroom / measured.fold_events_per_process)
    recommenders = math.ceil(load.decisions_per_s * headroom / measured.decisions_per_process)
    # Partitions cap consumer parallelism: leave room to double the consumers without
    # repartitioning (repartitioning moves keys and breaks per-customer order during the move).
    partitions = max(12, 2 ** math.ceil(math.log2(max(1, consumers * 2))))
    # Redis keeps ~30% over the data for fragmentation and copy-on-write during snapshots.
    memory_gib = load.customers * measured.redis_bytes_per_customer * 1.3 / 2**30
    ops = (load.events_per_s * measured.redis_ops_per_event
           + load.decisions_per_s * measured.redis_ops_per_decision)
    redis_cores = load.events_per_s * measured.redis_us_per_event / 1e6
    shards = max(1, math.ceil(memory_gib / redis_shard_gib),
                 math.ceil(ops * headroom / redis_shard_ops),
                 math.ceil(redis_cores * headroom))
    return Deployment(ingestion, consumers, recommenders, partitions, round(memory_gib, 1),
                      shards, round(ops), round(redis_cores, 2))


def measured_from_results(document: dict) -> Measured:
    """Per-process figures from a `bench/results/<date>.json` document.

    Ingest uses the CPU-time figure of the batched path with kafka-python (events per second
    one busy core sustains), because in a deployment each ingestion process has its own core,
    whereas the end-to-end figure of the run shares two cores with everything else.
    """
    scenarios = {item["name"]: item for item in document["scenarios"]}
    costs = document["ceilings"].get("ingest_costs") or {}
    ingest = costs.get("one_core_events_per_s_kafka_python") or scenarios["batch_ingest"]["value"]
    recommend = scenarios.get("recommend_20", {}).get("data", {}).get("max_rate", {})
    history = document.get("history_load") or {}
    folded = history.get("committed") or history.get("events") or 0
    commands = history.get("redis_commands") or []
    redis_us = sum(c["usec"] for c in commands) / folded if folded else 0.0
    redis_ops = sum(c["calls"] for c in commands) / folded if folded else 4.0
    return Measured(
        ingest_events_per_process=float(ingest),
        fold_events_per_process=float(scenarios["consumer_fold"]["value"]),
        # The recommender served the run with `recommender_workers` processes.
        decisions_per_process=float(recommend.get("achieved_rate") or 1.0)
        / max(1, int(document.get("recommender_workers") or 1)),
        redis_bytes_per_customer=float(scenarios["memory_per_customer"]["value"]),
        redis_ops_per_event=round(redis_ops, 1),
        redis_us_per_event=round(redis_us, 1),
    )


CAPACITY_START = "<!-- bench:capacity:start -->"
CAPACITY_END = "<!-- bench:capacity:end -->"
SCENARIOS = (("Target load", Load(10_000_000, 5_000, 2_000)),
             ("Ten times that", Load(100_000_000, 50_000, 20_000)))


def markdown(measured: Measured, source: str) -> str:
    """The sizing tables of `docs/capacity.md` for the target load and ten times it."""
    lines = [
        f"Per-process figures from `{source}`: ingest "
        f"{measured.ingest_events_per_process:,.0f} events/s, fold "
        f"{measured.fold_events_per_process:,.0f} events/s, "
        f"{measured.decisions_per_process:,.0f} decisions/s, "
        f"{measured.redis_bytes_per_customer:,.0f} bytes of Redis per customer, "
        f"{measured.redis_ops_per_event:,.1f} Redis commands and "
        f"{measured.redis_us_per_event:,.0f} us of Redis server time per folded event.",
        "",
        "| | " + " | ".join(name for name, _ in SCENARIOS) + " |",
        "| --- | " + " | ".join("---:" for _ in SCENARIOS) + " |",
    ]
    plans = [(load, plan(measured, load)) for _, load in SCENARIOS]
    rows = (
        ("Customers", lambda load, d: f"{load.customers:,}"),
        ("Events/s", lambda load, d: f"{load.events_per_s:,.0f}"),
        ("Decisions/s", lambda load, d: f"{load.decisions_per_s:,.0f}"),
        ("Ingestion processes", lambda load, d: f"{d.ingestion_processes}"),
        ("Profile consumer processes", lambda load, d: f"{d.profile_consumers}"),
        ("Recommender processes", lambda load, d: f"{d.recommender_processes}"),
        ("Partitions of touchpoints.v1", lambda load, d: f"{d.partitions}"),
        ("Redis memory (GiB, with 30% overhead)", lambda load, d: f"{d.redis_memory_gib:,.1f}"),
        ("Redis operations/s", lambda load, d: f"{d.redis_ops_per_s:,.0f}"),
        ("Redis cores busy with the fold", lambda load, d: f"{d.redis_cores:,.1f}"),
        ("Redis shards (25 GiB, 100,000 ops/s, half a core each)",
         lambda load, d: f"{d.redis_shards}"),
    )
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(load, d) for load, d in plans) + " |")
    return "\n".join(lines)
