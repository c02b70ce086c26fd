"""Sent records leave no reference cycles behind for the garbage collector (real broker)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kafka.producer.future import FutureRecordMetadata

from services.recommender.decision_log import KafkaDecisionLog
from services.streaming.publisher import KafkaPublisher
from shared.decisions import DecisionRecord
from shared.settings import Settings
from shared.stream import Record


@pytest.fixture
def cyclic_garbage() -> Iterator[list]:
    """What the cyclic collector finds unreachable while the test runs."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list = []
    try:
        yield found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def record_futures_in(garbage: list, topic: str) -> int:
    """Futures of records sent to `topic` that only the cyclic collector could free."""
    gc.collect()
    garbage.extend(gc.garbage)
    return sum(isinstance(item, FutureRecordMetadata)
               and getattr(item.value, "topic", None) == topic for item in garbage)


def test_published_records_are_freed_without_the_cycle_collector(settings: Settings,
                                                                cyclic_garbage: list):
    publisher = KafkaPublisher(settings)
    try:
        for n in range(20):  # each publish waits for its batch to be acknowledged
            publisher.publish(settings.topic_touchpoints,
                              [Record(f"k{n}".encode(), b"v", []) for _ in range(10)])
        assert record_futures_in(cyclic_garbage, settings.topic_touchpoints) == 0
    finally:
        publisher.close()


def test_logged_decisions_are_freed_without_the_cycle_collector(settings: Settings,
                                                               cyclic_garbage: list, caplog):
    sent: list[int] = []
    decision_log = KafkaDecisionLog(settings, on_sent=lambda: sent.append(1))
    record = DecisionRecord.model_validate({
        "decision_id": "d-0", "customer_id": "c-1", "decided_at": datetime.now(UTC),
        "model_version": "priors", "policy": "cold_start", "holdout": False, "actions": [],
        "features": {}, "candidates": [],
    })
    try:
        for batch in range(5):  # five acknowledged batches, the producer still open
            for n in range(20):
                decision_log.submit(record.model_copy(update={"decision_id": f"d-{batch}-{n}"}))
            decision_log.flush()
        assert len(sent) == 100
        assert not [r for r in caplog.records if r.name == "kafka.future"]  # no callback failed
        assert record_futures_in(cyclic_garbage, settings.topic_decisions) == 0
    finally:
        decision_log.close()
