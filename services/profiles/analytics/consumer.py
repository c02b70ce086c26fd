"""The analytics consumer: touchpoint events and decisions in, aggregates updated.

A kafka-python consumer group of its own (`ANALYTICS_CONSUMER_GROUP`) reads the touchpoint
and decision topics. Each poll becomes one pipelined batch of Lua calls; offsets are committed
only after Redis has the batch (at most every `KAFKA_CONSUMER_COMMIT_INTERVAL_MS`, at once when
idle), and every script dedupes on the event or decision id, so a redelivery after a crash
never counts twice. When Redis fails, the consumer rewinds to the batch's first offsets and
retries after a pause.

Records that cannot be decoded are skipped with a warning and counted: the profile consumer
dead-letters the same records on its own group, so they are not lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from pydantic import ValidationError

from services.profiles.analytics.api import aggregate_config
from services.profiles.analytics.facts import (
    DecisionFacts,
    EventFacts,
    UnusableEventError,
    decision_facts,
    event_facts,
)
from services.profiles.analytics.store import JOURNEYS_PER_SCRIPT, AnalyticsStore
from services.streaming.commit_schedule import CommitBeforeRevoke, CommitSchedule
from services.streaming.publisher import (
    CONSUMER_CLOSE_TIMEOUT_MS,
    CONSUMER_COMMIT_TIMEOUT_MS,
    kafka_client_options,
)
from shared.decisions import DecisionRecord
from shared.errors import StoreUnavailableError
from shared.settings import Settings
from shared.stream import decode_event
from shared.touchpoints import TouchpointCatalog, load_catalog

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
MAX_POLL_RECORDS = 500
BATCH_LINGER_S = 0.1
CLOSE_JOURNEYS_EVERY_S = 5.0
# Script calls per poll while quiet journeys remain: a backlog of thousands (after a
# backfill) is closed over many polls instead of holding Redis for seconds in one go.
CLOSE_CALLS_PER_POLL = 8
# An idle poll waits this long instead of POLL_TIMEOUT_MS while such a backlog remains.
CLOSING_POLL_TIMEOUT_MS = 50
RETRY_PAUSE_S = 1.0


def kafka_options(settings: Settings) -> dict:
    return {**kafka_client_options(settings), "client_id": f"{settings.kafka_client_id}-analytics"}


class AnalyticsConsumer:
    """The poll loop: decode, apply in one batch, then commit."""

    def __init__(
        self, kafka: KafkaConsumer, store: AnalyticsStore, catalog: TouchpointCatalog,
        events_topic: str, decisions_topic: str, clock: Callable[[], float] = time.time,
        commit_interval_s: float = 0.0,
    ):
        self.kafka = kafka
        self.store = store
        self.catalog = catalog
        self.events_topic = events_topic
        self.decisions_topic = decisions_topic
        self.clock = clock
        self.applied = 0
        self.skipped = 0
        self._last_close = 0.0
        self._closing = False  # quiet journeys were left for the next poll
        self.schedule = CommitSchedule(commit_interval_s)

    def decode(self, records) -> tuple[list[EventFacts], list[DecisionFacts]]:
        events, decisions = [], []
        for record in records:
            try:
                if record.topic == self.decisions_topic:
                    decisions.append(decision_facts(DecisionRecord.model_validate_json(record.value)))
                else:
                    events.append(event_facts(decode_event(record.value), self.catalog))
            except (ValidationError, UnusableEventError, ValueError) as exc:
                self.skipped += 1
                log.warning(
                    "analytics skipped %s[%s]@%s: %s", record.topic, record.partition,
                    record.offset, str(exc).splitlines()[0],
                )
        return events, decisions

    def poll_batch(self) -> dict:
        """Records by partition: once some arrive, waits up to BATCH_LINGER_S for a fuller
        batch, since one Lua call per 25 events shares their counter writes."""
        timeout_ms = CLOSING_POLL_TIMEOUT_MS if self._closing else POLL_TIMEOUT_MS
        batch = dict(self.kafka.poll(timeout_ms=timeout_ms, max_records=MAX_POLL_RECORDS))
        count = sum(len(items) for items in batch.values())
        deadline = time.monotonic() + BATCH_LINGER_S
        while 0 < count < MAX_POLL_RECORDS:
            wait_ms = int((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                break
            more = self.kafka.poll(timeout_ms=wait_ms, max_records=MAX_POLL_RECORDS - count)
            if not more:
                break
            for partition, items in more.items():
                batch.setdefault(partition, []).extend(items)
                count += len(items)
        return batch

    def step(self) -> int:
        """One poll; returns how many records it read."""
        batch = self.poll_batch()
        records = [record for items in batch.values() for record in items]
        now = self.clock()
        if records:
            events, decisions = self.decode(records)
            try:
                self.applied += self.store.record(events, decisions, int(now))
            except StoreUnavailableError as exc:
                log.warning("analytics store unavailable, retrying the batch: %s", exc)
                for partition, items in batch.items():
                    self.kafka.seek(partition, items[0].offset)
                time.sleep(RETRY_PAUSE_S)
                return 0
            self.schedule.processed()
        if self.schedule.due(bool(records)):
            self.commit_processed()
        if self._closing or now - self._last_close >= CLOSE_JOURNEYS_EVERY_S:
            self._close_some(now)
        return len(records)

    def _close_some(self, now: float) -> None:
        if not self._closing:
            self._last_close = now
        try:
            closed = self.store.close_quiet_journeys(max_calls=CLOSE_CALLS_PER_POLL)
        except StoreUnavailableError as exc:
            log.warning("analytics could not close quiet journeys: %s", exc)
            closed = 0
        self._closing = closed == CLOSE_CALLS_PER_POLL * JOURNEYS_PER_SCRIPT

    def commit_processed(self) -> None:
        """Commits the positions of the last poll: every record before them is applied."""
        if self.schedule.pending:
            self.kafka.commit(timeout_ms=CONSUMER_COMMIT_TIMEOUT_MS)
            self.schedule.committed()

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.step()
                except KafkaError as exc:
                    log.warning("analytics consumer: %s", exc)
                    stop.wait(RETRY_PAUSE_S)
            self.commit_processed()
        finally:
            self.kafka.close(timeout_ms=CONSUMER_CLOSE_TIMEOUT_MS)


def build_consumer(settings: Settings, client: redis.Redis) -> AnalyticsConsumer:
    kafka = KafkaConsumer(
        **kafka_options(settings),
        group_id=settings.analytics_consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    store = AnalyticsStore(client, settings.redis_namespace, aggregate_config(settings))
    consumer = AnalyticsConsumer(
        kafka, store, load_catalog(settings.touchpoint_catalog_file),
        settings.topic_touchpoints, settings.topic_decisions,
        commit_interval_s=settings.consumer_commit_interval_s,
    )
    kafka.subscribe([settings.topic_touchpoints, settings.topic_decisions],
                    listener=CommitBeforeRevoke(lambda _revoked: consumer.commit_processed()))
    return consumer



def start(
    settings: Settings, redis_client: object, stop_event: threading.Event
) -> threading.Thread:
    """Starts the analytics consumer thread and returns it; it stops when `stop_event` is set.

    `redis_client` is used when it is a sync `redis.Redis`; otherwise (e.g. an asyncio
    client) the consumer opens its own from `REDIS_URL`.
    """
    client = redis_client if isinstance(redis_client, redis.Redis) else (
        redis.Redis.from_url(settings.redis_url)
    )
    consumer = build_consumer(settings, client)
    thread = threading.Thread(
        target=consumer.run, args=(stop_event,), name="analytics-consumer", daemon=True
    )
    thread.consumer = consumer  # type: ignore[attr-defined]
    thread.start()
    return thread


__all__ = ["AnalyticsConsumer", "build_consumer", "start"]
