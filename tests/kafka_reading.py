"""Reading a whole topic back with kafka-python, for assertions."""

from __future__ import annotations

import time

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord


def read_topic(
    bootstrap_servers: str, topic: str, expected: int | None = None, timeout_s: float = 15.0
) -> list[ConsumerRecord]:
    """Every record on `topic` (all partitions, from the start) without joining a group.

    Returns once `expected` records were read, or when `timeout_s` passes (or 1.5 s after the
    last record when `expected` is None).
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers.split(","), enable_auto_commit=False,
        auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=500,
    )
    try:
        deadline = time.monotonic() + timeout_s
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        if partitions is None:
            return []
        from kafka import TopicPartition

        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
            if batch:
                quiet_since = time.monotonic()
            if expected is not None and len(records) >= expected:
                break
            if expected is None and records and time.monotonic() - quiet_since > 1.5:
                break
        return records
    finally:
        consumer.close()
