"""What the building blocks allow on this machine, measured in the same run.

- HTTP: an empty FastAPI endpoint served by the same `serve()` (same uvicorn settings) as the
  services;
- stream: raw kafka-python produce (the ingestion producer's own settings) and consume rates to
  the same broker, and confluent-kafka's produce rate for comparison;
- state: raw pipelined Redis writes and single reads with the same client library;
- model: the bare predict time of a logistic regression on one request's candidate rows.

Each figure is the denominator of a scenario's "share of ceiling".
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from services.bench import loadgen
from services.bench.system import Endpoint, SystemUnderTest
from services.devstack.redis import free_port
from services.streaming.publisher import KafkaPublisher, kafka_client_options
from shared.settings import Settings
from shared.stream import Record

EMPTY_BODY = b'{"customer_id":"c-0000001"}'


def http_ceiling(system: SystemUnderTest, rate: float, duration_s: float,
                 concurrency: int) -> dict[str, Any]:
    """The empty endpoint at the fixed rate (latency) and closed loop (maximum rate)."""
    port = free_port()
    env = dict(system.stack.env, INGESTION_PORT=str(port))
    endpoint = system.start_process("empty-endpoint", "services.bench.empty_app", port, env)
    try:
        action = post_action(endpoint, "/v1/empty", lambda i: EMPTY_BODY, {})
        fixed = loadgen.run(loadgen.open_loop(endpoint.host, endpoint.port, action, rate,
                                              duration_s))
        loadgen.run(loadgen.settle(endpoint.host, endpoint.port))
        maximum = loadgen.run(loadgen.closed_loop(endpoint.host, endpoint.port, action,
                                                  concurrency, duration_s))
    finally:
        process = system.stack.processes.pop("empty-endpoint")
        process.terminate()
        process.wait(timeout=10)
    return {"fixed_rate": fixed.to_dict(), "max_rate": maximum.to_dict(),
            "max_requests_per_s": round(maximum.achieved_rate, 1)}


def post_action(endpoint: Endpoint, path: str, body_for, headers: dict[str, str]):
    """An open/closed-loop action POSTing `body_for(i)` (bytes) as JSON to `path`."""
    base = {"Content-Type": "application/json", **headers}

    async def action(index: int, intended: float, connection: loadgen.Connection) -> int:
        payload = loadgen.build_request("POST", path, connection.host_header, body_for(index),
                                        base)
        return (await connection.send(payload)).status

    return action


def kafka_produce_ceiling(settings: Settings, records: Sequence[Record],
                          compression: str | None = None) -> dict[str, Any]:
    """kafka-python producer with the ingestion publisher's settings: msgs/s until all acked."""
    if compression is not None:
        settings = settings.model_copy(update={"kafka_compression": compression})
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    publisher = KafkaPublisher(settings)
    producer = publisher.producer()
    try:
        producer.send(topic, key=records[0].key, value=records[0].value).get(timeout=30)
        started = time.perf_counter()
        for record in records:
            producer.send(topic, key=record.key, value=record.value, headers=record.headers)
        producer.flush(timeout=120)
        elapsed = time.perf_counter() - started
    finally:
        publisher.close()
    return {"topic": topic, "messages": len(records), "seconds": round(elapsed, 3),
            "messages_per_s": round(len(records) / elapsed, 1),
            "compression": settings.kafka_compression,
            "mean_value_bytes": round(sum(len(r.value) for r in records) / len(records))}


def confluent_produce_ceiling(settings: Settings, records: Sequence[Record]) -> dict[str, Any]:
    """confluent-kafka (librdkafka) with equivalent settings, for comparison."""
    try:
        from confluent_kafka import Producer
    except ImportError:
        return {"status": "not available", "reason": "confluent-kafka is not installed"}
    producer = Producer({
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "acks": "all", "enable.idempotence": True, "linger.ms": settings.kafka_linger_ms,
        "compression.type": settings.kafka_compression, "log_level": 3,
    })
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    producer.produce(topic, key=records[0].key, value=records[0].value)
    producer.flush(30)
    failures = []

    def delivered(error, _message) -> None:
        if error is not None:
            failures.append(error)

    started = time.perf_counter()
    for record in records:
        while True:
            try:
                producer.produce(topic, key=record.key, value=record.value,
                                 headers=record.headers, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    return {"messages": len(records), "seconds": round(elapsed, 3), "failed": len(failures),
            "messages_per_s": round(len(records) / elapsed, 1),
            "compression": settings.kafka_compression}


def kafka_consume_ceiling(settings: Settings, topic: str, expected: int) -> dict[str, Any]:
    """A kafka-python group consumer reading a topic: msgs/s from the first record on."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, **kafka_client_options(settings), group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
        max_poll_records=2000, fetch_max_bytes=32 * 1024 * 1024,
    )
    seen, started = 0, None
    deadline = time.monotonic() + 120
    try:
        while seen < expected and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            for records in batch.values():
                if started is None and records:
                    started = time.perf_counter()
                seen += len(records)
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        consumer.close()
    return {"messages": seen, "seconds": round(elapsed, 3),
            "messages_per_s": round(seen / elapsed, 1) if elapsed else None}


def redis_ceiling(redis_url: str, operations: int = 200_000, value_bytes: int = 400,
                  pipeline_size: int = 1000) -> dict[str, Any]:
    """Pipelined SET/GET of profile-sized values and single-read latency (redis-py)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix = f"bench:raw:{uuid.uuid4().hex[:6]}"
    value = os.urandom(value_bytes // 2).hex().encode()
    try:
        started = time.perf_counter()
        for first in range(0, operations, pipeline_size):
            pipe = client.pipeline(transaction=False)
            for n in range(first, min(first + pipeline_size, operations)):
                pipe.set(f"{prefix}:{n}", value)
            pipe.execute()
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        for first in range(0, operations, pipeline_size):
            pipe = client.pipeline(transaction=False)
            for n in range(first, min(first + pipeline_size, operations)):
                pipe.get(f"{prefix}:{n}")
            pipe.execute()
        read_s = time.perf_counter() - started
        singles = []
        for n in range(2000):
            t0 = time.perf_counter()
            client.get(f"{prefix}:{n}")
            singles.append(time.perf_counter() - t0)
        for first in range(0, operations, 10_000):
            client.delete(*[f"{prefix}:{n}" for n in range(first, min(first + 10_000,
                                                                        operations))])
    finally:
        client.close()
    singles.sort()
    return {"operations": operations, "value_bytes": value_bytes, "pipeline": pipeline_size,
            "pipelined_set_per_s": round(operations / write_s, 1),
            "pipelined_get_per_s": round(operations / read_s, 1),
            "single_get_p50_ms": round(singles[len(singles) // 2] * 1000, 4),
            "single_get_p99_ms": round(singles[int(len(singles) * 0.99)] * 1000, 4)}


def model_ceiling(rows: int = 20, features: int = 48, repeats: int = 3000) -> dict[str, Any]:
    """Bare predict time of a fitted logistic regression on one request's candidate rows."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    train = rng.normal(size=(5000, features))
    labels = (train @ rng.normal(size=features) + rng.normal(size=5000) > 1).astype(int)
    model = LogisticRegression(max_iter=500).fit(train, labels)
    batch = rng.normal(size=(rows, features))
    coef, intercept = model.coef_[0].copy(), float(model.intercept_[0])

    def timed(call) -> float:
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples) * 1000

    return {"rows": rows, "features": features,
            "predict_proba_ms": round(timed(lambda: model.predict_proba(batch)), 4),
            "numpy_dot_ms": round(timed(lambda: 1 / (1 + np.exp(-(batch @ coef + intercept)))),
                                  4)}


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and Python version of this machine."""
    import platform

    model, memory_kib = "unknown", 0
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                          if line.startswith("model name")), model)
        with open("/proc/meminfo") as meminfo:
            memory_kib = int(next(line.split()[1] for line in meminfo
                                  if line.startswith("MemTotal")))
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_gib": round(memory_kib / 1024 / 1024, 1),
            "cpu_model": model, "python": sys.version.split()[0],
            "platform": platform.platform(), "load_average_at_start": os.getloadavg()}
