"""The analytics consumer on a real Kafka-protocol broker and a real Redis."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.profiles.analytics import consumer
from services.profiles.analytics.api import build_reader
from services.profiles.analytics.schemas import Filters
from shared.decisions import DecidedAction, DecisionRecord
from shared.events import ValidationRules, validate_event
from shared.stream import event_record
from shared.touchpoints import load_catalog

T0 = datetime(2027, 1, 10, 8, 0, tzinfo=UTC)
DAY = Filters(date_from=date(2027, 1, 10), date_to=date(2027, 1, 12))


def events():
    rules = ValidationRules(catalog=load_catalog(), now=T0 + timedelta(days=30))
    raw = [
        ("c1", 0, "ads.click", {}),
        ("c1", 2, "zalo.message", {"context": {"decision_id": "d1"}}),
        ("c1", 5, "web.purchase", {"value": 250000, "currency": "VND"}),
        ("c2", 1, "email.open", {}),
        ("c2", 3, "survey.response", {"rating": 4}),
    ]
    return [
        validate_event({"event_id": f"{c}-{h}", "customer_id": c, "touchpoint": tp,
                        "occurred_at": (T0 + timedelta(hours=h)).isoformat(), **extra}, rules)
        for c, h, tp, extra in raw
    ]


def decision() -> DecisionRecord:
    return DecisionRecord(
        decision_id="d1", customer_id="c1", decided_at=T0 + timedelta(hours=1),
        model_version="v7", policy="model", holdout=False,
        actions=[DecidedAction(action_id="zalo_reminder", rank=1, channel="zalo",
                               touchpoint="zalo.outreach", score=0.4, propensity=0.8)],
    )


def produce(settings, records):
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for topic, key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


@pytest.fixture
def analytics_settings(settings, test_id):
    return settings.model_copy(update={"analytics_consumer_group": f"analytics-{test_id}"})


def test_consumer_counts_each_event_once_and_commits(analytics_settings, redis_client):
    settings = analytics_settings
    batch = events()
    records = [(settings.topic_touchpoints, e.identity.encode(), event_record(e).value)
               for e in batch]
    records.append((settings.topic_touchpoints, b"c3", b"{not json"))
    decision_bytes = decision().model_dump_json().encode()
    # The decision twice and every event twice: a redelivery must not count again. The
    # decision goes first and is seen before its outcomes, as in real traffic (an outcome read
    # before its decision is not joined: see docs/analytics.md).
    produce(settings, [(settings.topic_decisions, b"c1", decision_bytes)] * 2)
    stop = threading.Event()
    thread = consumer.start(settings, redis_client, stop)
    reader = build_reader(settings, redis_client)
    try:
        wait_for(lambda: reader.recommendations(DAY).actions)
        produce(settings, records * 2)
        wait_for(lambda: reader.effectiveness(DAY).totals.events >= len(batch)
                 and reader.recommendations(DAY).actions)
        time.sleep(1.0)  # let the duplicates arrive too
        wait_for(lambda: thread.consumer.skipped == 2)
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()

    table = reader.effectiveness(DAY)
    assert table.totals.events == len(batch)
    assert table.totals.purchases == 1 and table.totals.revenue == 250000
    rows = {row.touchpoint: row for row in table.rows}
    assert rows["ads.click"].conversions == 1 and rows["email.open"].conversions == 0
    assert rows["survey.response"].average_rating == 4
    (action,) = reader.recommendations(DAY).actions
    assert (action.action, action.model_version, action.decisions) == ("zalo_reminder", "v7", 1)
    assert action.treated.responses == 1 and action.treated.revenue == 250000

    check = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                          group_id=settings.analytics_consumer_group, enable_auto_commit=False)
    try:
        for topic, produced in ((settings.topic_touchpoints, 12), (settings.topic_decisions, 2)):
            wait_for(lambda t=topic: check.partitions_for_topic(t) is not None)
            partitions = check.partitions_for_topic(topic)
            committed = sum(check.committed(TopicPartition(topic, p)) or 0 for p in partitions)
            assert committed == produced  # last processed + 1, summed over partitions
    finally:
        check.close()


class ScriptedPolls:
    """Answers `poll` from a list of batches, then with nothing; records the arguments."""

    def __init__(self, batches):
        self.batches = list(batches)
        self.calls = []

    def poll(self, timeout_ms, max_records):
        self.calls.append((timeout_ms, max_records))
        return self.batches.pop(0) if self.batches else {}


def test_a_poll_waits_briefly_for_a_fuller_batch_in_partition_order():
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    polls = ScriptedPolls([{a: [1, 2]}, {b: [10]}, {a: [3]}])
    analytics = consumer.AnalyticsConsumer(polls, None, None, "t", "d")
    assert analytics.poll_batch() == {a: [1, 2, 3], b: [10]}
    # three answers, then one empty poll ends the wait
    assert len(polls.calls) == 4
    assert [limit for _, limit in polls.calls] == [500, 498, 497, 496]


def test_a_full_batch_is_returned_without_waiting():
    a = TopicPartition("t", 0)
    polls = ScriptedPolls([{a: list(range(consumer.MAX_POLL_RECORDS))}, {a: [999]}])
    analytics = consumer.AnalyticsConsumer(polls, None, None, "t", "d")
    assert len(analytics.poll_batch()[a]) == consumer.MAX_POLL_RECORDS
    assert len(polls.calls) == 1


class ClosingStore:
    """Answers `close_quiet_journeys` with the given counts; records each call."""

    def __init__(self, counts):
        self.counts = list(counts)
        self.calls = []

    def close_quiet_journeys(self, max_calls=None):
        self.calls.append(max_calls)
        return self.counts.pop(0)


def test_a_backlog_of_quiet_journeys_is_closed_a_little_per_poll():
    full = consumer.CLOSE_CALLS_PER_POLL * consumer.JOURNEYS_PER_SCRIPT
    store = ClosingStore([full, full, 3, 0])
    now = [1000.0]
    analytics = consumer.AnalyticsConsumer(ScriptedPolls([]), store, None, "t", "d",
                                           clock=lambda: now[0])
    polls = analytics.kafka
    for _ in range(3):  # a full share each time means more are waiting: go on at once
        analytics.step()
    assert store.calls == [consumer.CLOSE_CALLS_PER_POLL] * 3
    # while the backlog lasts, an idle poll waits briefly
    assert [timeout for timeout, _ in polls.calls] == [
        consumer.POLL_TIMEOUT_MS] + [consumer.CLOSING_POLL_TIMEOUT_MS] * 2
    analytics.step()  # the backlog is gone: nothing until the next round is due
    assert len(store.calls) == 3
    assert polls.calls[-1][0] == consumer.POLL_TIMEOUT_MS
    now[0] += consumer.CLOSE_JOURNEYS_EVERY_S
    analytics.step()
    assert len(store.calls) == 4 and store.calls[-1] == consumer.CLOSE_CALLS_PER_POLL
