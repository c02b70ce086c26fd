"""Putting decisions on `decisions.v1` without making the request wait for the broker.

A decision is queued in memory and a background thread hands it to a kafka-python producer
(keyed by customer id, so one customer's decisions stay ordered). The request path only does
a `put_nowait`: a slow or absent broker never slows a recommendation down. A full queue or a
failed send is counted (`touchpoint_decisions_log_failures_total`) and logged, never raised:
the customer still gets an answer, and the failure shows on the dashboard.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from services.streaming.produce_futures import release_when_done
from services.streaming.publisher import kafka_client_options
from shared.decisions import DECISION_TYPE, DecisionRecord
from shared.settings import Settings

log = logging.getLogger(__name__)

_STOP = object()
DECISION_LINGER_MS = 100


class DecisionSink(Protocol):
    def submit(self, record: DecisionRecord) -> bool: ...
    def flush(self, timeout_s: float = 10.0) -> None: ...
    def close(self) -> None: ...


def decision_headers(record: DecisionRecord) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", record.decision_id.encode()),
        ("ce_source", b"/touchpoint/recommender"),
        ("ce_type", DECISION_TYPE.encode()),
        ("ce_time", record.decided_at.isoformat().encode()),
        ("ce_subject", record.customer_id.encode()),
        ("content-type", b"application/json"),
        ("schema_version", str(record.schema_version).encode()),
    ]


def producer_options(settings: Settings) -> dict:
    """Delivery options of the decision producer on top of the shared connection options."""
    return {
        **kafka_client_options(settings),
        "acks": settings.kafka_acks if settings.kafka_acks == "all" else int(settings.kafka_acks),
        # Nobody waits for a decision to be acknowledged, so batches may fill for longer:
        # at a few hundred decisions per second, one produce request per record would cost
        # more CPU than the decision itself.
        "linger_ms": max(settings.kafka_linger_ms, DECISION_LINGER_MS),
        "compression_type": None
        if settings.kafka_compression == "none"
        else settings.kafka_compression,
        "retries": settings.kafka_retries,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        "max_block_ms": int(settings.kafka_send_timeout_s * 1000),
    }


class KafkaDecisionLog:
    """Queue + sender thread + kafka-python producer. `submit` never blocks."""

    def __init__(
        self,
        settings: Settings,
        on_failure: Callable[[str], None] = lambda reason: None,
        on_sent: Callable[[], None] = lambda: None,
        capacity: int = 10_000,
    ):
        self.settings = settings
        self.topic = settings.topic_decisions
        self.on_failure = on_failure
        self.on_sent = on_sent
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._producer: KafkaProducer | None = None
        self._producer_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def submit(self, record: DecisionRecord) -> bool:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.on_failure("queue_full")
            log.warning("decision log queue full; decision %s not logged", record.decision_id)
            return False
        return True

    def _ensure_producer(self) -> KafkaProducer:
        with self._producer_lock:
            if self._producer is None:
                self._producer = KafkaProducer(**producer_options(self.settings))
            return self._producer

    def _send(self, record: DecisionRecord) -> None:
        def failed(exc: BaseException) -> None:
            self.on_failure("send_failed")
            log.warning("decision %s not logged: %s", record.decision_id, exc)

        try:
            future = self._ensure_producer().send(
                self.topic,
                key=record.customer_id.encode(),
                value=record.model_dump_json().encode(),
                headers=decision_headers(record),
            )
        except (KafkaError, OSError, ValueError) as exc:
            failed(exc)
            return
        future.add_callback(lambda _metadata: self.on_sent())
        future.add_errback(failed)
        release_when_done(future)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    if self._producer is not None:
                        self._producer.flush(timeout=self.settings.kafka_send_timeout_s)
                    item.set()
                    continue
                self._send(item)
            finally:
                self._queue.task_done()

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every decision submitted so far was handed over and acknowledged."""
        done = threading.Event()
        self._queue.put(done, timeout=timeout_s)
        done.wait(timeout_s)

    def check(self) -> None:
        """Raises when the broker cannot be reached (for readiness, not the request path)."""
        producer = self._ensure_producer()
        if not producer.bootstrap_connected():
            raise ConnectionError("no Kafka broker connected")

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except KafkaError as exc:
                log.warning("decision producer did not close cleanly: %s", exc)


class InMemoryDecisionLog:
    """Keeps decisions in a list: for the benchmark without a broker, and offline runs."""

    def __init__(self) -> None:
        self.records: list[DecisionRecord] = []
        self._lock = threading.Lock()

    def submit(self, record: DecisionRecord) -> bool:
        with self._lock:
            self.records.append(record)
        return True

    def flush(self, timeout_s: float = 10.0) -> None:
        return None

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None
