"""Where the CPU time of batched ingest goes, per event, measured in-process.

The same steps `POST /v1/events` runs for a batch (parse the body, validate every event against
the catalog, build the Kafka records, hand them to the producer and wait for the
acknowledgements), timed step by step in CPU seconds of this process, so that the figures hold
even when other work shares the machine. The producer step is timed for kafka-python and for
confluent-kafka.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from services.bench import dataset
from services.ingestion.intake import take_events
from services.streaming.confluent_publisher import ConfluentPublisher
from services.streaming.publisher import KafkaPublisher
from shared.events import ValidationRules
from shared.settings import Settings
from shared.stream import event_record
from shared.touchpoints import load_catalog


def _cpu_us_per_event(started: float, events: int) -> float:
    return round((time.process_time() - started) / events * 1e6, 2)


def measure(settings: Settings, batches: int = 20, batch_size: int = 500) -> dict[str, Any]:
    now = datetime.now(UTC)
    catalog = load_catalog(settings.touchpoint_catalog_file)
    bodies = dataset.batch_bodies(dataset.live_events(now, batches * batch_size, "cost", 21),
                                  batch_size)
    total = batches * batch_size
    costs: dict[str, Any] = {"events": total}

    started = time.process_time()
    parsed = [orjson.loads(body) for body in bodies]
    costs["parse_json_us"] = _cpu_us_per_event(started, total)

    rules = ValidationRules(catalog, now, settings.max_future_skew_s)
    started = time.process_time()
    results = [take_events(body, rules, settings.max_batch_events) for body in parsed]
    costs["validate_us"] = _cpu_us_per_event(started, total)

    started = time.process_time()
    records = [[event_record(event) for event in result.accepted] for result in results]
    costs["build_records_us"] = _cpu_us_per_event(started, total)

    for name, backend in (("kafka_python", KafkaPublisher), ("confluent", ConfluentPublisher)):
        publisher = backend(settings)
        topic = f"bench.cost.{uuid.uuid4().hex[:8]}"
        try:
            publisher.publish(topic, records[0][:1])  # connect and learn the metadata first
            started = time.process_time()
            wall = time.perf_counter()
            for batch in records:
                publisher.publish(topic, batch)
            costs[f"publish_{name}_us"] = _cpu_us_per_event(started, total)
            costs[f"publish_{name}_wall_events_per_s"] = round(
                total / (time.perf_counter() - wall), 1)
        except Exception as exc:  # reported, not fatal
            costs[f"publish_{name}_us"] = None
            costs[f"publish_{name}_error"] = f"{type(exc).__name__}: {exc}"
        finally:
            publisher.close()
    steps = costs["parse_json_us"] + costs["validate_us"] + costs["build_records_us"]
    for name in ("kafka_python", "confluent"):
        publish = costs.get(f"publish_{name}_us")
        if publish is not None:
            costs[f"total_{name}_us"] = round(steps + publish, 2)
            costs[f"one_core_events_per_s_{name}"] = round(1e6 / (steps + publish))
    return costs
