"""Benchmark hooks of the profile service: consumer throughput and Redis memory per customer.

Both take running servers through `settings` and return plain dicts of measured numbers; the
benchmark suite decides what to print. Simulated customers come from the journey simulator.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from services.profiles.consumer import BatchProcessor, ProfileConsumer, build_kafka_consumer
from services.profiles.decoding import Decoded, decode_touchpoint
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import ProfileStore
from services.simulator.journeys import JourneySimulator
from services.streaming.publisher import KafkaPublisher
from shared import redis_keys as keys
from shared.events import TouchpointEvent, ValidationRules, validate_event
from shared.settings import Settings
from shared.stream import event_record
from shared.touchpoints import TouchpointCatalog

START = datetime(2027, 1, 1, tzinfo=UTC)
END = datetime(2027, 6, 1, tzinfo=UTC)


def simulated_events(catalog: TouchpointCatalog, customers: int, seed: int = 7,
                     first: int = 0) -> list[TouchpointEvent]:
    simulator = JourneySimulator(seed=seed, start=START, end=END)
    rules = ValidationRules(catalog=catalog, now=END)
    return [validate_event(raw, rules, source="simulator")
            for raw in simulator.stream(customers, first)]


def consumer_throughput(
    settings: Settings, catalog: TouchpointCatalog, customers: int = 2000,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Events per second one consumer (this process) folds into Redis, group join excluded.

    `settings` should name a fresh topic, group and namespace.
    """
    events = simulated_events(catalog, customers)
    publisher = KafkaPublisher(settings)
    try:
        records = [event_record(e) for e in events]
        for start in range(0, len(records), 1000):
            publisher.publish(settings.topic_touchpoints, records[start : start + 1000])
        client = redis.Redis.from_url(settings.redis_url)
        store = ProfileStore(client, settings.redis_namespace,
                             settings.profile_timeline_length, settings.profile_dedupe_window)
        metrics = ProfileMetrics()
        processor = BatchProcessor(store, catalog, publisher, settings, metrics)
        consumer = ProfileConsumer(build_kafka_consumer(settings), processor, metrics,
                                   [settings.topic_touchpoints], poll_timeout_ms=100,
                                   commit_interval_s=settings.consumer_commit_interval_s)
        timing = {"first": 0.0, "last": 0.0, "records": 0, "cpu_first": 0.0, "cpu_last": 0.0}
        apply = processor.apply
        stop = threading.Event()

        def timed(batch):
            if not timing["first"]:
                timing["first"], timing["cpu_first"] = time.perf_counter(), time.process_time()
            result = apply(batch)
            timing["records"] += len(batch.records)
            timing["last"], timing["cpu_last"] = time.perf_counter(), time.process_time()
            if timing["records"] >= len(records):
                stop.set()
            return result

        processor.apply = timed  # type: ignore[method-assign]
        thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
        thread.start()
        thread.join(timeout_s)
        stop.set()
        thread.join(10)
        client.close()
    finally:
        publisher.close()
    elapsed = max(1e-9, timing["last"] - timing["first"])
    cpu = max(1e-9, timing["cpu_last"] - timing["cpu_first"])
    # Wall-clock throughput depends on what else runs on the machine; events per CPU-second
    # of this process says what one dedicated core would do.
    return {"events": len(events), "records_processed": timing["records"],
            "seconds": round(elapsed, 3), "events_per_s": round(timing["records"] / elapsed),
            "consumer_cpu_seconds": round(cpu, 3),
            "events_per_consumer_cpu_s": round(timing["records"] / cpu),
            "batches": consumer.batches, "batch_size": settings.profile_consumer_batch_size}


def load_customers(store: ProfileStore, catalog: TouchpointCatalog, customers: int,
                   seed: int = 7, chunk: int = 2000) -> dict[str, int]:
    """Folds simulated customers straight into Redis (no Kafka), the way the consumer does."""
    events = applied = 0
    linked: set[tuple[str, str]] = set()
    for first in range(0, customers, chunk):
        batch = simulated_events(catalog, min(chunk, customers - first), seed, first)
        decoded = [decode_touchpoint(event_record(e).value, None, catalog) for e in batch]
        deltas = [d.delta for d in decoded if isinstance(d, Decoded) and d.delta]
        for start in range(0, len(deltas), 1000):
            applied += sum(o.value == "applied" for o in store.apply(deltas[start:start + 1000]))
        for item in decoded:
            if isinstance(item, Decoded) and item.link:
                pair = (item.link.anonymous_id, item.link.customer_id)
                if pair not in linked:  # the consumer keeps the same cache
                    store.link(*pair, item.link.at_ms)
                    linked.add(pair)
        events += len(batch)
    return {"events": events, "applied": applied}


def memory_per_customer(
    settings: Settings, catalog: TouchpointCatalog, customers: int = 10_000,
    sample: int = 1000, seed: int = 7,
) -> dict[str, Any]:
    """Redis memory per profile after loading `customers` simulated customers.

    Two views: `used_memory` growth divided by the profiles created, and MEMORY USAGE of the
    keys of a random sample of profiles.
    """
    client = redis.Redis.from_url(settings.redis_url)
    try:
        store = ProfileStore(client, settings.redis_namespace, settings.profile_timeline_length,
                             settings.profile_dedupe_window)
        before = int(client.info("memory")["used_memory"])
        started = time.perf_counter()
        loaded = load_customers(store, catalog, customers, seed)
        seconds = time.perf_counter() - started
        after = int(client.info("memory")["used_memory"])
        subjects = list(store.subjects())
        rng = random.Random(seed)
        picked = rng.sample(subjects, min(sample, len(subjects)))
        usage = sorted(store.memory_usage(s) for s in picked)
        events_per = []
        for subject in picked:
            profile = store.read(subject)
            events_per.append(int(profile.state.get("n", {}).get("ev", 0)) if profile else 0)
        aliases = sum(1 for _ in client.scan_iter(
            match=f"{settings.redis_namespace}:{{a:*}}:alias", count=1000))
    finally:
        client.close()
    return {
        "customers": customers,
        "events": loaded["events"],
        "profiles": len(subjects),
        "alias_keys": aliases,
        "load_events_per_s": round(loaded["events"] / seconds),
        "used_memory_delta_per_profile": round((after - before) / max(1, len(subjects))),
        "memory_usage_mean": round(sum(usage) / max(1, len(usage))),
        "memory_usage_p50": _quantile(usage, 0.5),
        "memory_usage_p90": _quantile(usage, 0.9),
        "memory_usage_p99": _quantile(usage, 0.99),
        "events_per_profile_mean": round(sum(events_per) / max(1, len(events_per)), 1),
    }


def _quantile(values: Sequence[int], q: float) -> int:
    if not values:
        return 0
    return values[min(len(values) - 1, int(q * len(values)))]


def subject_of(customer_id: str) -> str:
    return keys.customer_subject(customer_id)
