"""The profile consumer: the poll loop and Kafka lifecycle in one place, the work as steps.

    poll -> decode (pure) -> dead-letter (limit, then produce) -> apply (Lua, pipelined)
         -> link identities -> commit last processed offset + 1 per partition

When the consumer is behind, the steps from dead-letter to link run in a worker thread while
the loop polls and decodes on; one batch is in flight at a time, and what was polled meanwhile
is applied next as one batch.

Delivery is at least once: offsets are committed only after Redis (and the dead-letter topic)
hold the batch, at most every `KAFKA_CONSUMER_COMMIT_INTERVAL_MS` while records keep coming
(`services/streaming/commit_schedule.py`). Anything redelivered (a crash before the commit, a
commit refused during a rebalance) is recognised by the dedupe inside the Lua script and
counts once.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError, NoBrokersAvailable
from kafka.structs import OffsetAndMetadata

from services.profiles.decoding import DeadLetter, Decoded, Link, decode_decision, decode_touchpoint
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import Outcome, ProfileStore
from services.streaming.commit_schedule import CommitBeforeRevoke, CommitSchedule
from services.streaming.publisher import (
    CONSUMER_CLOSE_TIMEOUT_MS,
    CONSUMER_COMMIT_TIMEOUT_MS,
    Publisher,
    kafka_client_options,
)
from shared.errors import BrokerUnavailableError, TouchpointError, UnavailableError
from shared.settings import Settings
from shared.stream import REQUEST_ID_HEADER, dead_letter_record, header
from shared.touchpoints import TouchpointCatalog

log = logging.getLogger(__name__)

DEAD_LETTER_SOURCE = "profiles"
# Records written longer ago than this mean the consumer is behind: it then applies batches in
# a worker thread while it polls on (see ProfileConsumer).
CATCH_UP_AGE_MS = 100
# While a batch is in flight, a poll waits at most this long before the loop checks on it.
CATCH_UP_POLL_MS = 10
# How long one thread may keep the interpreter while another wants it (Python's default is
# 5 ms). Each of the worker's Redis replies waited up to that long behind the decoding loop;
# with 0.5 ms a consumer process folded a backlog 8-40% faster (docs/profile.md).
APPLY_SWITCH_INTERVAL_S = 0.0005


def use_quick_thread_switches() -> None:
    """For a process that runs the profile consumer: see APPLY_SWITCH_INTERVAL_S."""
    sys.setswitchinterval(APPLY_SWITCH_INTERVAL_S)


class TooManyDeadLetters(TouchpointError):
    """Too many undecodable records in a row: probably a bad producer deploy. Stop, loudly."""


@dataclass(frozen=True)
class DeadLetterLimit:
    """How many undecodable records in a row are tolerated. A value: `after` returns a new one."""

    max_consecutive: int
    consecutive: int = 0

    def after(self, dead: bool) -> DeadLetterLimit:
        if not dead:
            return DeadLetterLimit(self.max_consecutive)
        if self.consecutive + 1 > self.max_consecutive:
            raise TooManyDeadLetters(
                f"{self.consecutive + 1} undecodable records in a row (limit "
                f"{self.max_consecutive}); stopping without committing this batch"
            )
        return DeadLetterLimit(self.max_consecutive, self.consecutive + 1)


def offsets_to_commit(records: Iterable[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """Last processed offset + 1 for every partition in the batch."""
    last: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        last[tp] = max(last.get(tp, -1), record.offset)
    return {tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in last.items()}


def behind(records: Sequence[ConsumerRecord], now_ms: float | None = None) -> bool:
    """Whether the oldest record was written more than CATCH_UP_AGE_MS ago."""
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    return now_ms - min(record.timestamp for record in records) > CATCH_UP_AGE_MS


def waiting_size(batches: Sequence[PreparedBatch]) -> int:
    return sum(len(batch.records) for batch in batches)


def merged(batches: Sequence[PreparedBatch]) -> PreparedBatch:
    """Batches polled one after another as one, in the same order."""
    if len(batches) == 1:
        return batches[0]
    return PreparedBatch([r for b in batches for r in b.records],
                         [d for b in batches for d in b.decoded])


@dataclass(frozen=True)
class PreparedBatch:
    records: Sequence[ConsumerRecord]
    decoded: list[Decoded | DeadLetter]


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    refused: int = 0
    dead_lettered: int = 0
    linked: int = 0
    by_topic: dict[str, dict[Outcome, int]] = field(default_factory=dict)


class BatchProcessor:
    """The steps between poll and commit, without the Kafka consumer (tests drive it directly)."""

    def __init__(
        self,
        store: ProfileStore,
        catalog: TouchpointCatalog,
        dead_letters: Publisher,
        settings: Settings,
        metrics: ProfileMetrics,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        link_cache_size: int = 100_000,
    ):
        self.store = store
        self.catalog = catalog
        self.dead_letters = dead_letters
        self.settings = settings
        self.metrics = metrics
        self.now = now
        self.limit = DeadLetterLimit(settings.profile_max_consecutive_dead_letters)
        self._linked: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._link_cache_size = link_cache_size

    def decode(self, record: ConsumerRecord) -> Decoded | DeadLetter:
        if record.topic == self.settings.topic_decisions:
            return decode_decision(record.value, record.key)
        return decode_touchpoint(record.value, record.key, self.catalog)

    def process(self, records: Sequence[ConsumerRecord]) -> BatchResult:
        return self.apply(self.prepare(records))

    def prepare(self, records: Sequence[ConsumerRecord]) -> PreparedBatch:
        """Decodes the batch (pure); raises TooManyDeadLetters past the limit. Each batch is
        prepared once and in order, so the count of dead letters in a row runs across them."""
        decoded = [self.decode(record) for record in records]
        limit = self.limit
        for item in decoded:
            limit = limit.after(isinstance(item, DeadLetter))
        self.limit = limit
        return PreparedBatch(records, decoded)

    def apply(self, batch: PreparedBatch) -> BatchResult:
        """Makes a prepared batch durable; may be called again for the same batch after an
        UnavailableError (every step is idempotent)."""
        result = BatchResult()
        self._dead_letter(batch.records, batch.decoded, result)
        self._apply(batch.records, batch.decoded, result)
        self._link(batch.decoded, result)
        return result

    def _dead_letter(self, records: Sequence[ConsumerRecord],
                     decoded: Sequence[Decoded | DeadLetter], result: BatchResult) -> None:
        dead = [(r, d) for r, d in zip(records, decoded, strict=True) if isinstance(d, DeadLetter)]
        if not dead:
            return
        now = self.now()
        out = []
        for record, letter in dead:
            reason = f"{letter.reason} ({record.topic}/{record.partition}@{record.offset})"
            request_id = header(record.headers, REQUEST_ID_HEADER)
            log.warning("dead-lettering %s: %s", record.topic, reason,
                        extra={"request_id": request_id})
            out.append(dead_letter_record(
                letter.value, reason, DEAD_LETTER_SOURCE, now, letter.errors, key=letter.key,
                request_id=request_id,
            ))
        self.dead_letters.publish(self.settings.topic_dead_letter, out)
        for record, _ in dead:
            self.metrics.dead_lettered.labels(record.topic).inc()
        result.dead_lettered = len(dead)

    def _apply(self, records: Sequence[ConsumerRecord], decoded: Sequence[Decoded | DeadLetter],
               result: BatchResult) -> None:
        work = [(r.topic, d.delta) for r, d in zip(records, decoded, strict=True)
                if isinstance(d, Decoded) and d.delta is not None]
        if not work:
            return
        outcomes = self.store.apply([delta for _, delta in work])
        for (topic, _), outcome in zip(work, outcomes, strict=True):
            counts = result.by_topic.setdefault(topic, {})
            counts[outcome] = counts.get(outcome, 0) + 1
        if log.isEnabledFor(logging.DEBUG):
            self._log_applied(records, decoded, outcomes)
        for topic, counts in result.by_topic.items():
            self.metrics.applied.labels(topic).inc(counts.get(Outcome.APPLIED, 0))
            self.metrics.duplicates.labels(topic).inc(counts.get(Outcome.DUPLICATE, 0))
            self.metrics.refused.labels(topic).inc(counts.get(Outcome.REFUSED_ERASED, 0))
            result.applied += counts.get(Outcome.APPLIED, 0)
            result.duplicates += counts.get(Outcome.DUPLICATE, 0)
            result.refused += counts.get(Outcome.REFUSED_ERASED, 0)

    @staticmethod
    def _log_applied(records: Sequence[ConsumerRecord], decoded: Sequence[Decoded | DeadLetter],
                     outcomes: Sequence[object]) -> None:
        """One line per applied record, carrying the request id that produced it."""
        applied = [r for r, d in zip(records, decoded, strict=True)
                   if isinstance(d, Decoded) and d.delta is not None]
        for record, outcome in zip(applied, outcomes, strict=True):
            log.debug("profile update %s (%s/%s@%s)", getattr(outcome, "value", outcome),
                      record.topic, record.partition, record.offset,
                      extra={"request_id": header(record.headers, REQUEST_ID_HEADER)})

    def _link(self, decoded: Sequence[Decoded | DeadLetter], result: BatchResult) -> None:
        links: dict[tuple[str, str], Link] = {}
        for item in decoded:
            if isinstance(item, Decoded) and item.link is not None:
                pair = (item.link.anonymous_id, item.link.customer_id)
                if pair not in self._linked and pair not in links:
                    links[pair] = item.link
        outcomes = self.store.link_many(
            [(link.anonymous_id, link.customer_id, link.at_ms) for link in links.values()])
        for pair, outcome in zip(links, outcomes, strict=True):
            label = "merged" if outcome.merged else "conflict" if outcome.conflict_with else "known"
            self.metrics.links.labels(label).inc()
            result.linked += int(outcome.merged)
            self._linked[pair] = None
            if len(self._linked) > self._link_cache_size:
                self._linked.popitem(last=False)


def build_kafka_consumer(
    settings: Settings,
    group_id: str | None = None,
    stop: threading.Event | None = None,
    connect_timeout_s: float = 120.0,
) -> KafkaConsumer:
    """A group consumer; waits (with backoff) for the brokers to answer, up to a bound."""
    deadline = time.monotonic() + connect_timeout_s
    delay = 0.5
    while True:
        try:
            return KafkaConsumer(
                **kafka_client_options(settings),
                group_id=group_id or settings.kafka_consumer_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=settings.profile_consumer_batch_size,
                session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000,
                max_poll_interval_ms=300_000,
                fetch_max_wait_ms=settings.profile_consumer_fetch_wait_ms,
            )
        except NoBrokersAvailable as exc:
            stopping = stop is not None and stop.is_set()
            if stopping or time.monotonic() + delay > deadline:
                raise BrokerUnavailableError(
                    f"no Kafka broker answered within {connect_timeout_s:g} s") from exc
            log.warning("Kafka not reachable yet; retrying in %.1f s", delay)
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            delay = min(delay * 2, 10.0)


class ProfileConsumer:
    """Runs the poll loop until `stop` is set; the one place that talks to the consumer."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        processor: BatchProcessor,
        metrics: ProfileMetrics,
        topics: Sequence[str],
        poll_timeout_ms: int = 200,
        retry_backoff_s: float = 0.5,
        commit_interval_s: float = 0.0,
    ):
        self.consumer = consumer
        self.processor = processor
        self.metrics = metrics
        self.topics = list(topics)
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_backoff_s = retry_backoff_s
        self.failure: BaseException | None = None
        self.batches = 0
        self.schedule = CommitSchedule(commit_interval_s)
        self._durable: dict[TopicPartition, OffsetAndMetadata] = {}
        # Behind (a full poll, or records older than CATCH_UP_AGE_MS), batches are applied by
        # a worker thread while the loop polls on, and what it polls meanwhile is applied next,
        # in one batch: the batches grow with the backlog. The embedded broker answers a fetch
        # with one producer batch per partition, a dozen records at 2,000 events/s, so a
        # consumer that polled and applied in turn could not catch up once behind. In step, a
        # poll of a dozen fresh records is applied inline (no thread handoff).
        self.full_poll = int(consumer.config.get("max_poll_records") or 500)

    def run(self, stop: threading.Event) -> None:
        """Polls and decodes while a batch is applied in Redis by a worker thread (waiting on
        Redis releases the interpreter): one batch in flight at a time, made durable before its
        offsets may be committed; batches are applied in the order they were polled."""
        self.consumer.subscribe(self.topics, listener=CommitBeforeRevoke(self.commit_durable))
        applying = ThreadPoolExecutor(max_workers=1, thread_name_prefix="profile-apply")
        in_flight: tuple[PreparedBatch, Future[bool]] | None = None
        waiting: list[PreparedBatch] = []  # polled while a batch was in flight
        try:
            while not stop.is_set():
                records = self._poll(stop, CATCH_UP_POLL_MS if in_flight else None)
                try:
                    if records:
                        waiting.append(self.processor.prepare(records))
                except TooManyDeadLetters:
                    if in_flight is not None:
                        self._settle(*in_flight)
                    self.commit_durable()
                    raise
                if in_flight is not None and (in_flight[1].done() or not records
                                              or waiting_size(waiting) >= self.full_poll):
                    done, in_flight = in_flight, None
                    if not self._settle(*done):
                        break
                if in_flight is None and waiting:
                    batch, waiting = merged(waiting), []
                    started = time.perf_counter()
                    if len(batch.records) >= self.full_poll or behind(batch.records):
                        in_flight = (batch, applying.submit(
                            self._apply_until_durable, batch, stop, started))
                    elif not self._settle(batch, self._apply_until_durable(batch, stop, started)):
                        break
                if self.schedule.due(bool(records)):
                    self.commit_durable()
                self._observe_lag()
            if in_flight is not None:
                self._settle(*in_flight)
            self.commit_durable()
        except TooManyDeadLetters as exc:
            self.failure = exc
            log.error("profile consumer stopped: %s", exc)
            raise
        finally:
            applying.shutdown(wait=True)
            self.consumer.close(autocommit=False, timeout_ms=CONSUMER_CLOSE_TIMEOUT_MS)

    def _settle(self, batch: PreparedBatch, durable: bool | Future[bool]) -> bool:
        """Once a batch is durable its offsets may be committed; False if it is not (the
        consumer was stopped first). `durable` may be the worker's future: waits for it."""
        if isinstance(durable, Future):
            durable = durable.result()
        if durable:
            self._durable.update(offsets_to_commit(batch.records))
            self.schedule.processed()
            self.batches += 1
        return durable

    def commit_durable(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commits the offsets of the batches Redis holds (of `partitions` only, if given)."""
        if partitions is None:
            # A batch that was in flight through a rebalance may hold partitions now owned by
            # another member: their offsets are its to commit.
            owned = self.consumer.assignment()
            offsets = {tp: o for tp, o in self._durable.items() if tp in owned}
            self._durable = {}
            self.schedule.committed()
        else:
            offsets = {tp: self._durable.pop(tp) for tp in partitions if tp in self._durable}
        if offsets:
            self._commit(offsets)

    def _poll(self, stop: threading.Event, timeout_ms: int | None = None) -> list[ConsumerRecord]:
        try:
            polled = self.consumer.poll(timeout_ms=timeout_ms or self.poll_timeout_ms)
        except KafkaError as exc:
            # Group membership hiccups (a refused SyncGroup during a rebalance, a coordinator
            # moving) are worth a retry: the next poll rejoins the group.
            self.metrics.poll_errors.inc()
            log.warning("poll failed, rejoining: %r", exc)
            stop.wait(self.retry_backoff_s)
            return []
        return [record for batch in polled.values() for record in batch]

    def _apply_until_durable(self, batch: PreparedBatch, stop: threading.Event,
                             started: float) -> bool:
        """Applies the batch, retrying while Redis or Kafka is down; False if stopped."""
        while True:
            try:
                self.processor.apply(batch)
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
                return True
            except UnavailableError as exc:
                self.metrics.store_retries.inc()
                log.warning("batch of %d not durable yet (%s); retrying", len(batch.records), exc)
                if stop.wait(self.retry_backoff_s):
                    return False

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            self.consumer.commit(offsets, timeout_ms=CONSUMER_COMMIT_TIMEOUT_MS)
        except CommitFailedError as exc:
            # The group rebalanced while we worked: the new owner gets these records again
            # and the dedupe makes that harmless.
            self.metrics.commit_failures.inc()
            log.warning("offset commit refused during a rebalance: %s", exc)
        except KafkaError as exc:
            self.metrics.commit_failures.inc()
            log.warning("offset commit failed: %s", exc)

    def _observe_lag(self) -> None:
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = self.consumer.position(tp, timeout_ms=100)
            except KafkaError:
                continue
            if position is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(highwater - position)


def build_consumer(
    settings: Settings,
    store: ProfileStore,
    catalog: TouchpointCatalog,
    dead_letters: Publisher,
    metrics: ProfileMetrics,
    stop: threading.Event | None = None,
) -> ProfileConsumer:
    processor = BatchProcessor(store, catalog, dead_letters, settings, metrics)
    return ProfileConsumer(
        build_kafka_consumer(settings, stop=stop), processor, metrics,
        topics=[settings.topic_touchpoints, settings.topic_decisions],
        commit_interval_s=settings.consumer_commit_interval_s,
    )
