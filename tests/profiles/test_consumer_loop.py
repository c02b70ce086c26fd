"""The poll loop's batching when it is behind: what it polls while a batch is applied is
applied next as one batch, in order, and committed only once durable. A scripted consumer
stands in for Kafka here (the loop against the real broker is in test_consumer.py)."""

from __future__ import annotations

import threading
import time

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from services.profiles.consumer import (
    CATCH_UP_AGE_MS,
    PreparedBatch,
    ProfileConsumer,
    behind,
    merged,
)
from services.profiles.metrics import ProfileMetrics

TP = TopicPartition("touchpoints.v1", 0)


def record(offset: int, timestamp_ms: float = 0) -> ConsumerRecord:
    return ConsumerRecord(TP.topic, TP.partition, -1, offset, int(timestamp_ms), 0, b"k", b"v",
                          [], None, 1, 1, -1)


class ScriptedConsumer:
    """Answers each poll with the next scripted list of records, then with nothing."""

    def __init__(self, polls: list[list[ConsumerRecord]]):
        self.polls = list(polls)
        self.config = {"max_poll_records": 500}
        self.commits: list[dict] = []
        self.served = threading.Event()  # every scripted poll was answered

    def subscribe(self, topics, listener=None) -> None:
        pass

    def poll(self, timeout_ms: int) -> dict:
        if self.polls:
            return {TP: self.polls.pop(0)}
        self.served.set()
        time.sleep(min(timeout_ms, 5) / 1000)
        return {}

    def commit(self, offsets, timeout_ms=None) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp):
        return None

    def close(self, autocommit=False, timeout_ms=None) -> None:
        pass


class SlowProcessor:
    """Records the offsets of each applied batch; the first apply waits for `release`."""

    def __init__(self) -> None:
        self.applied: list[list[int]] = []
        self.release = threading.Event()

    def prepare(self, records) -> PreparedBatch:
        return PreparedBatch(records, [None] * len(records))

    def apply(self, batch: PreparedBatch) -> None:
        if not self.applied:
            assert self.release.wait(10)
        self.applied.append([r.offset for r in batch.records])


def test_records_polled_while_a_batch_is_applied_are_applied_next_as_one_batch():
    old = [record(0), record(1), record(2)]  # written long ago: the consumer is behind
    consumer = ScriptedConsumer([old, [record(3), record(4)], [record(5), record(6)]])
    processor = SlowProcessor()
    loop = ProfileConsumer(consumer, processor, ProfileMetrics(), ["touchpoints.v1"],  # type: ignore[arg-type]
                           poll_timeout_ms=20)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,))
    thread.start()
    try:
        # The first batch is still being applied: the next two polls must wait, uncommitted.
        assert consumer.served.wait(10)
        assert processor.applied == [] and consumer.commits == []
        processor.release.set()
        deadline = time.monotonic() + 10
        while len(processor.applied) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(10)
    assert processor.applied == [[0, 1, 2], [3, 4, 5, 6]]
    assert consumer.commits and consumer.commits[-1] == {TP: 7}


def test_a_fresh_trickle_is_not_behind_and_an_old_record_is():
    now_ms = 1_000_000.0
    fresh = [record(0, now_ms - 20), record(1, now_ms - 5)]
    assert not behind(fresh, now_ms)
    assert behind([*fresh, record(2, now_ms - CATCH_UP_AGE_MS - 1)], now_ms)


def test_merged_batches_keep_the_poll_order():
    first = PreparedBatch([record(0), record(1)], ["a", "b"])  # type: ignore[list-item]
    second = PreparedBatch([record(2)], ["c"])  # type: ignore[list-item]
    both = merged([first, second])
    assert [r.offset for r in both.records] == [0, 1, 2] and both.decoded == ["a", "b", "c"]
    assert merged([first]) is first
