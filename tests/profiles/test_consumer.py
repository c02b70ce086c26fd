"""The consumer against the real Kafka-protocol broker and the real Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from kafka import KafkaConsumer, TopicPartition

from services.profiles.consumer import (
    BatchProcessor,
    ProfileConsumer,
    TooManyDeadLetters,
    build_kafka_consumer,
)
from services.profiles.fold import epoch_ms
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import ProfileStore
from services.streaming.publisher import KafkaPublisher, kafka_client_options
from shared.decisions import DecidedAction, DecisionRecord
from shared.settings import Settings
from shared.stream import Record, dead_letter_original, event_record
from shared.touchpoints import load_catalog
from tests.kafka_reading import read_topic
from tests.profiles.reference import clean_fold, produce, simulated_events
from tests.profiles.state_compare import assert_same_profile
from tests.profiles.streams import T0, event

CATALOG = load_catalog()


class RunningConsumer:
    """One consumer of the group in a thread of the test process."""

    def __init__(self, settings: Settings, store: ProfileStore, metrics: ProfileMetrics):
        self.metrics = metrics
        self.publisher = KafkaPublisher(settings)
        processor = BatchProcessor(store, CATALOG, self.publisher, settings, metrics)
        self.consumer = ProfileConsumer(
            build_kafka_consumer(settings), processor, metrics,
            [settings.topic_touchpoints, settings.topic_decisions], poll_timeout_ms=100,
            commit_interval_s=settings.consumer_commit_interval_s)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.consumer.run(self.stop)
        except BaseException as exc:  # kept for the test to inspect
            self.error = exc

    def __enter__(self) -> RunningConsumer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join(timeout=20)
        self.publisher.close()


def counted(metrics: ProfileMetrics) -> float:
    total = 0.0
    for family in (metrics.applied, metrics.duplicates, metrics.refused, metrics.dead_lettered):
        for sample in family.collect()[0].samples:
            if sample.name.endswith("_total"):
                total += sample.value
    return total


def wait_for(condition: Callable[[], bool], timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def committed_everything(settings: Settings) -> Callable[[], bool]:
    """True once the group's committed offsets reach the end of every partition."""
    probe = KafkaConsumer(**kafka_client_options(settings), group_id=settings.kafka_consumer_group,
                          enable_auto_commit=False)

    def check() -> bool:
        partitions = probe.partitions_for_topic(settings.topic_touchpoints) or set()
        tps = [TopicPartition(settings.topic_touchpoints, p) for p in partitions]
        if not tps:
            return False
        ends = probe.end_offsets(tps)
        return all((probe.committed(tp) or 0) >= ends[tp] for tp in tps)

    check.close = probe.close  # type: ignore[attr-defined]
    return check


@pytest.fixture
def store(redis_client, settings):
    return ProfileStore(redis_client, settings.redis_namespace,
                        timeline_capacity=settings.profile_timeline_length,
                        dedupe_capacity=settings.profile_dedupe_window)


def assert_store_matches(store: ProfileStore, expected: dict) -> None:
    """The consumer merges a visitor's history at the link, where the clean fold has it in
    the customer's from the start: a different order of merges."""
    stored = set(store.subjects())
    assert stored == set(expected), sorted(stored ^ set(expected))[:10]
    for subject, profile in expected.items():
        assert_same_profile(store.read(subject), profile, any_order=True)


def test_same_event_three_times_counts_once_and_offsets_are_committed(settings, store):
    events = [event("e1", "web.purchase", value=120000, currency="VND"),
              event("e2", "web.visit", 5)]
    produce(settings, events, copies=3)
    metrics = ProfileMetrics()
    check = committed_everything(settings)
    try:
        with RunningConsumer(settings, store, metrics):
            wait_for(lambda: counted(metrics) >= 6 and check())
    finally:
        check.close()
    state = store.read("c:c-1").state
    assert state["n"]["orders"] == 1 and state["n"]["ev"] == 2 and state["n"]["rv:VND"] == 120000
    assert metrics.duplicates.labels(settings.topic_touchpoints)._value.get() == 4


def test_undecodable_records_go_to_the_dead_letter_topic_and_the_consumer_moves_on(
    settings, store
):
    publisher = KafkaPublisher(settings)
    publisher.publish(settings.topic_touchpoints, [
        Record(key=b"c-1", value=b"{not json", headers=[("request_id", b"req-42")]),
        event_record(event("ok", "web.visit")),
        Record(key=b"c-1", value=b'{"event_id": "x", "touchpoint": "web.visit"}', headers=[]),
    ])
    publisher.close()
    metrics = ProfileMetrics()
    with RunningConsumer(settings, store, metrics):
        wait_for(lambda: counted(metrics) >= 3)
    assert store.read("c:c-1").state["n"]["ev"] == 1
    letters = read_topic(settings.kafka_bootstrap_servers, settings.topic_dead_letter, expected=2)
    originals = sorted(dead_letter_original(r.value) for r in letters)
    assert originals == [b'{"event_id": "x", "touchpoint": "web.visit"}', b"{not json"]
    reasons = [dict(r.headers)["dlq_reason"].decode() for r in letters]
    assert all("not a valid touchpoint event" in reason for reason in reasons)
    assert any(dict(r.headers).get("request_id") == b"req-42" for r in letters)


def test_too_many_dead_letters_in_a_row_stop_the_consumer_without_committing(settings, store):
    settings = settings.model_copy(update={"profile_max_consecutive_dead_letters": 3})
    publisher = KafkaPublisher(settings)
    publisher.publish(settings.topic_touchpoints,
                      [Record(key=b"k", value=b"garbage", headers=[]) for _ in range(5)])
    publisher.close()
    metrics = ProfileMetrics()
    running = RunningConsumer(settings, store, metrics)
    with running:
        wait_for(lambda: not running.thread.is_alive(), timeout_s=30)
    assert isinstance(running.error, TooManyDeadLetters)
    assert counted(metrics) == 0
    check = committed_everything(settings)
    try:
        assert not check()
    finally:
        check.close()


def test_decisions_become_contact_history(settings, store):
    decision = DecisionRecord(
        decision_id="d-1", customer_id="c-1", decided_at=T0, model_version="m1", policy="model",
        holdout=False, actions=[DecidedAction(action_id="winback_email", rank=1, channel="email",
                                              touchpoint="email.send", score=0.3,
                                              propensity=0.9)])
    publisher = KafkaPublisher(settings)
    record = Record(key=b"c-1", value=decision.model_dump_json().encode(), headers=[])
    publisher.publish(settings.topic_decisions, [record, record])
    publisher.close()
    metrics = ProfileMetrics()
    with RunningConsumer(settings, store, metrics):
        wait_for(lambda: counted(metrics) >= 2)
    state = store.read("c:c-1").state
    assert state["n"]["oc:email"] == 1 and state["oc"][0][1:] == ["email", "winback_email", "d-1"]


def test_identity_merge_and_erasure_followed_by_a_late_event(settings, store):
    anon = [event(f"a{i}", "web.product_view", i, customer_id=None, anonymous_id="v-1")
            for i in range(3)]
    login = event("login", "web.login", 10, anonymous_id="v-1")
    after = event("a9", "web.add_to_cart", 20, customer_id=None, anonymous_id="v-1")
    produce(settings, [*anon, login])
    metrics = ProfileMetrics()
    with RunningConsumer(settings, store, metrics):
        wait_for(lambda: counted(metrics) >= 4)
        produce(settings, [after])
        wait_for(lambda: counted(metrics) >= 5)
        assert_store_matches(store, clean_fold([*anon, login, after], CATALOG))
        assert store.alias_target("v-1") == "c-1"

        store.erase("c-1", now_ms=epoch_ms(T0) + 86_400_000)  # erased a day after T0
        late = [event("late", "web.visit", 30), event("late-anon", "web.visit", 31,
                                                      customer_id=None, anonymous_id="v-1")]
        produce(settings, [*late, login])  # late events and a replayed one
        wait_for(lambda: counted(metrics) >= 8)
    assert store.read("c:c-1") is None and store.read("a:v-1") is None
    assert metrics.refused.labels(settings.topic_touchpoints)._value.get() == 3


@pytest.mark.slow
def test_two_consumers_with_a_rebalance_end_like_one_clean_fold(settings, store):
    # Small batches: members poll often, so the group settles quickly after a join.
    settings = settings.model_copy(update={"profile_consumer_batch_size": 100})
    events = simulated_events(CATALOG, customers=200)
    half = len(events) // 2
    produce(settings, events[:half])
    metrics_a, metrics_b = ProfileMetrics(), ProfileMetrics()
    check = committed_everything(settings)
    try:
        with RunningConsumer(settings, store, metrics_a) as first:
            wait_for(lambda: counted(metrics_a) > 0)
            with RunningConsumer(settings, store, metrics_b) as second:  # the group rebalances
                wait_for(lambda: bool(second.consumer.consumer.assignment()), timeout_s=90)
                produce(settings, events[half:])
                produce(settings, events[: len(events) // 3])  # redelivered on top
                wait_for(check, timeout_s=90)
                assert len(first.consumer.consumer.assignment()) < 8  # it gave some up
    finally:
        check.close()
    assert counted(metrics_b) > 0, "the second consumer never got a partition"
    assert counted(metrics_a) + counted(metrics_b) >= len(events) + len(events) // 3
    assert_store_matches(store, clean_fold(events, CATALOG))
