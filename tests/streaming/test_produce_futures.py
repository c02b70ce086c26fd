"""Sent records leave no reference cycles behind for the garbage collector (real broker)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kafka.producer.future import FutureProduceResult, FutureRecordMetadata

from services.recommender.decision_log import KafkaDecisionLog
from services.streaming.publisher import KafkaPublisher
from shared.decisions import DecisionRecord
from shared.settings import Settings
from shared.stream import Record

KAFKA_FUTURES = (FutureRecordMetadata, FutureProduceResult)


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


def kafka_futures_in(garbage_after: list) -> int:
    gc.collect()
    garbage_after.extend(gc.garbage)
    return sum(isinstance(item, KAFKA_FUTURES) for item in garbage_after)


def test_published_records_are_freed_without_the_cycle_collector(settings: Settings,
                                                                cyclic_garbage: list):
    publisher = KafkaPublisher(settings)
    try:
        publisher.publish(settings.topic_touchpoints, [Record(b"k", b"v", [])])  # connects
        gc.collect()
        gc.garbage.clear()
        for n in range(20):
            publisher.publish(settings.topic_touchpoints,
                              [Record(f"k{n}".encode(), b"v", []) for _ in range(10)])
    finally:
        publisher.close()  # the producer lets go of every batch
    assert kafka_futures_in(cyclic_garbage) == 0


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
        decision_log.submit(record)
        decision_log.flush()
        gc.collect()
        gc.garbage.clear()
        for n in range(100):
            decision_log.submit(record.model_copy(update={"decision_id": f"d-{n + 1}"}))
        decision_log.flush()
    finally:
        decision_log.close()  # the producer lets go of every batch
    assert len(sent) == 101
    assert not [r for r in caplog.records if r.name == "kafka.future"]  # no callback failed
    assert kafka_futures_in(cyclic_garbage) == 0
