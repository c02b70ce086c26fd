"""The dead-letter topic for operators: what is waiting there, and putting it back.

A dead-letter record keeps the original bytes, the reason and the source (`shared.stream`).
Listing reads the topic without joining a consumer group, so nothing is committed and the
records stay for the next look. Replaying re-validates each original exactly as ingestion
would and republishes the valid ones to the touchpoint topic; those that still fail are
reported with their field errors. Replaying twice is harmless: an event keeps its
`event_id` (one is derived from the original bytes when it had none), and the profile
consumer counts an `event_id` once.

`plan_replay` is the pure part; `DeadLetterReader` and `replay_dead_letters` do the I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from services.streaming.publisher import KafkaPublisher, Publisher, kafka_client_options
from shared.errors import BrokerUnavailableError, InvalidEventError
from shared.events import Source, TouchpointEvent, ValidationRules, validate_event
from shared.settings import Settings
from shared.stream import REQUEST_ID_HEADER, Headers, Record, event_record, header
from shared.touchpoints import load_catalog

Progress = Callable[[int], None]  # called with how many records were just handled

_SOURCE = TypeAdapter(Source)
FALLBACK_SOURCE = "import"
PUBLISH_BATCH = 500


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, decoded as far as it goes."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes
    reason: str
    source: str
    dead_lettered_at: str | None
    errors: list[dict[str, Any]]
    original: bytes | None  # None when the dead-letter record itself is unreadable
    request_id: str | None = None

    @property
    def when(self) -> datetime:
        """When it was dead-lettered (the record's own timestamp if the body has no time)."""
        if self.dead_lettered_at:
            try:
                moment = datetime.fromisoformat(self.dead_lettered_at)
                if moment.tzinfo is not None:
                    return moment
            except ValueError:
                pass
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (the original as text when it is UTF-8)."""
        original: str | None = None
        if self.original is not None:
            original = self.original.decode("utf-8", "replace")
        return {
            "partition": self.partition, "offset": self.offset,
            "dead_lettered_at": self.dead_lettered_at, "source": self.source,
            "reason": self.reason, "errors": self.errors, "key": self.key.decode("utf-8",
                                                                                 "replace"),
            "request_id": self.request_id, "original": original,
        }


def parse_dead_letter(
    partition: int, offset: int, timestamp_ms: int, key: bytes | None, value: bytes | None,
    headers: Headers | None,
) -> DeadLetter:
    """Decodes one dead-letter record; a record not in our layout is kept and described."""
    common = {"partition": partition, "offset": offset, "timestamp_ms": timestamp_ms,
              "key": key or b"", "request_id": header(headers, REQUEST_ID_HEADER)}
    try:
        body = orjson.loads(value or b"")
        original = _original_bytes(body)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return DeadLetter(
            reason=header(headers, "dlq_reason") or "unreadable dead-letter record",
            source=(header(headers, "ce_source") or "unknown").removeprefix("/touchpoint/"),
            dead_lettered_at=header(headers, "ce_time"),
            errors=[{"field": "(record)", "message": f"not a dead-letter record: {exc}",
                     "type": "dead_letter_format"}],
            original=None, **common,
        )
    errors = body.get("errors")
    return DeadLetter(
        reason=str(body.get("reason", "")), source=str(body.get("source", "unknown")),
        dead_lettered_at=body.get("dead_lettered_at"),
        errors=errors if isinstance(errors, list) else [], original=original, **common,
    )


def _original_bytes(body: Any) -> bytes:
    if not isinstance(body, dict):
        raise ValueError("the value is not a JSON object")
    try:
        return base64.b64decode(body["original_base64"], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"original_base64 is not base64: {exc}") from exc


# --- replay: the pure part -----------------------------------------------------------------


@dataclass
class ReplayPlan:
    """What a replay would do: events ready to republish, and what still fails."""

    ready: list[tuple[DeadLetter, TouchpointEvent]] = field(default_factory=list)
    failing: list[tuple[DeadLetter, list[dict[str, Any]]]] = field(default_factory=list)


def replay_event_id(original: bytes) -> str:
    """The event id for an original without one: the same bytes always give the same id."""
    return "dlq-" + hashlib.sha256(original).hexdigest()[:32]


def replay_source(raw: dict[str, Any], letter: DeadLetter) -> str:
    """Where the event first came from: its own `source`, else the dead letter's, else import."""
    for candidate in (raw.get("source"), letter.source):
        if isinstance(candidate, str):
            try:
                return _SOURCE.validate_python(candidate)
            except ValidationError:
                continue
    return FALLBACK_SOURCE


def revalidate(letter: DeadLetter, rules: ValidationRules) -> TouchpointEvent:
    """Validates the original bytes as ingestion would; raises `InvalidEventError`."""
    if letter.original is None:
        raise InvalidEventError(letter.errors)
    try:
        raw = orjson.loads(letter.original)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError([{"field": "(body)", "message": f"not valid JSON: {exc}",
                                  "type": "json_invalid"}]) from exc
    if isinstance(raw, dict) and "event_id" not in raw:
        raw = {**raw, "event_id": replay_event_id(letter.original)}
    source = replay_source(raw, letter) if isinstance(raw, dict) else FALLBACK_SOURCE
    return validate_event(raw, rules, source=source)


def plan_replay(letters: Iterable[DeadLetter], rules: ValidationRules) -> ReplayPlan:
    plan = ReplayPlan()
    for letter in letters:
        try:
            plan.ready.append((letter, revalidate(letter, rules)))
        except InvalidEventError as exc:
            plan.failing.append((letter, exc.errors))
    return plan


def replay_record(letter: DeadLetter, event: TouchpointEvent) -> Record:
    """The touchpoint record to publish; the original request id travels with it."""
    return event_record(event, request_id=letter.request_id)


# --- reading the topic ---------------------------------------------------------------------


class DeadLetterReader:
    """Reads the dead-letter topic up to its current end, outside any consumer group."""

    def __init__(self, settings: Settings, metadata_timeout_s: float = 2.0):
        self.settings = settings
        self.topic = settings.topic_dead_letter
        self.metadata_timeout_s = metadata_timeout_s
        self._consumer: KafkaConsumer | None = None
        self._topic_partitions: list[TopicPartition] | None = None

    def __enter__(self) -> DeadLetterReader:
        try:
            self._consumer = KafkaConsumer(
                **kafka_client_options(self.settings), group_id=None,
                enable_auto_commit=False, auto_offset_reset="earliest",
                request_timeout_ms=max(self.settings.kafka_request_timeout_ms, 10_000),
            )
        except KafkaError as exc:
            raise BrokerUnavailableError(f"Kafka is unreachable: {exc}") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None

    @property
    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("use DeadLetterReader as a context manager")
        return self._consumer

    def _partitions(self) -> list[TopicPartition]:
        if self._topic_partitions is None:
            # Metadata may lag a topic created a moment ago: look again briefly.
            deadline = time.monotonic() + self.metadata_timeout_s
            partitions = self.consumer.partitions_for_topic(self.topic)
            while not partitions and time.monotonic() < deadline:
                time.sleep(0.2)
                partitions = self.consumer.partitions_for_topic(self.topic)
            self._topic_partitions = [TopicPartition(self.topic, p)
                                      for p in sorted(partitions or ())]
        return self._topic_partitions

    def ranges(self, newest: int | None = None) -> dict[TopicPartition, tuple[int, int]]:
        """Per partition, the offsets to read: [start, end) as of now.

        With `newest`, each partition starts at most `newest` records before its end, which
        is enough to find the `newest` most recent records overall.
        """
        try:
            partitions = self._partitions()
            if not partitions:
                return {}
            begin = self.consumer.beginning_offsets(partitions)
            end = self.consumer.end_offsets(partitions)
        except KafkaError as exc:
            raise BrokerUnavailableError(f"cannot read {self.topic}: {exc}") from exc
        ranges = {}
        for tp in partitions:
            start = begin[tp] if newest is None else max(begin[tp], end[tp] - newest)
            if end[tp] > start:
                ranges[tp] = (start, end[tp])
        return ranges

    def read(
        self, ranges: dict[TopicPartition, tuple[int, int]], on_progress: Progress | None = None,
        idle_timeout_s: float = 15.0,
    ) -> Iterator[DeadLetter]:
        """Every record in `ranges`, in offset order per partition."""
        if not ranges:
            return
        consumer = self.consumer
        consumer.assign(list(ranges))
        for tp, (start, _) in ranges.items():
            consumer.seek(tp, start)
        remaining = set(ranges)
        last_progress = time.monotonic()
        try:
            while remaining:
                batch = consumer.poll(timeout_ms=500, max_records=1000)
                for tp, records in batch.items():
                    end = ranges[tp][1]
                    wanted = [r for r in records if r.offset < end]
                    for record in wanted:
                        yield parse_dead_letter(tp.partition, record.offset, record.timestamp,
                                                record.key, record.value, record.headers)
                    if on_progress and wanted:
                        on_progress(len(wanted))
                    if wanted:
                        last_progress = time.monotonic()
                for tp in list(remaining):
                    if consumer.position(tp) >= ranges[tp][1]:
                        remaining.discard(tp)
                        consumer.pause(tp)
                if remaining and time.monotonic() - last_progress > idle_timeout_s:
                    raise BrokerUnavailableError(
                        f"{self.topic}: no records for {idle_timeout_s:g} s before the end of "
                        f"partitions {sorted(tp.partition for tp in remaining)}")
        except KafkaError as exc:
            raise BrokerUnavailableError(f"cannot read {self.topic}: {exc}") from exc


def count(ranges: dict[TopicPartition, tuple[int, int]]) -> int:
    return sum(end - start for start, end in ranges.values())


@dataclass(frozen=True)
class DeadLetterListing:
    letters: list[DeadLetter]  # oldest first
    total: int  # records on the topic, listed or not


def list_dead_letters(
    settings: Settings, limit: int | None = None, on_start: Callable[[int], None] | None = None,
    on_progress: Progress | None = None,
) -> DeadLetterListing:
    """The dead letters on the topic, oldest first; with `limit`, only the newest `limit`."""
    with DeadLetterReader(settings) as reader:
        total = count(reader.ranges())
        ranges = reader.ranges(newest=limit) if limit else reader.ranges()
        if on_start:
            on_start(count(ranges))
        letters = list(reader.read(ranges, on_progress))
    letters.sort(key=lambda letter: (letter.when, letter.partition, letter.offset))
    return DeadLetterListing(letters[-limit:] if limit else letters, total)


# --- replay: the I/O -----------------------------------------------------------------------


@dataclass
class ReplayReport:
    """What a replay did. In a dry run, `replayed` lists what would have been republished."""

    read: int = 0
    replayed: list[tuple[DeadLetter, str]] = field(default_factory=list)  # (letter, event id)
    failing: list[tuple[DeadLetter, list[dict[str, Any]]]] = field(default_factory=list)
    dry_run: bool = False


def replay_dead_letters(
    settings: Settings, rules: ValidationRules, dry_run: bool = False,
    publisher: Publisher | None = None, on_start: Callable[[int], None] | None = None,
    on_progress: Progress | None = None,
) -> ReplayReport:
    """Re-validates every dead letter and republishes the valid ones (unless `dry_run`).

    Publishing waits for the broker's acknowledgement of each batch; a broker failure
    raises `BrokerUnavailableError` after the batches already acknowledged.
    """
    report = ReplayReport(dry_run=dry_run)
    own_publisher = publisher is None and not dry_run
    if own_publisher:
        publisher = KafkaPublisher(settings)
    try:
        with DeadLetterReader(settings) as reader:
            ranges = reader.ranges()
            if on_start:
                on_start(count(ranges))
            pending: list[tuple[DeadLetter, TouchpointEvent]] = []
            for letter in reader.read(ranges):
                report.read += 1
                plan = plan_replay([letter], rules)
                report.failing.extend(plan.failing)
                pending.extend(plan.ready)
                if len(pending) >= PUBLISH_BATCH:
                    _publish(settings, publisher, pending, report, dry_run, on_progress)
                    pending = []
                if plan.failing and on_progress:
                    on_progress(1)
            _publish(settings, publisher, pending, report, dry_run, on_progress)
    finally:
        if own_publisher and publisher is not None:
            publisher.close()
    return report


def _publish(
    settings: Settings, publisher: Publisher | None,
    ready: Sequence[tuple[DeadLetter, TouchpointEvent]], report: ReplayReport, dry_run: bool,
    on_progress: Progress | None,
) -> None:
    if not ready:
        return
    if not dry_run:
        assert publisher is not None
        publisher.publish(settings.topic_touchpoints,
                          [replay_record(letter, event) for letter, event in ready])
    report.replayed.extend((letter, event.event_id) for letter, event in ready)
    if on_progress:
        on_progress(len(ready))


def replay_rules(settings: Settings, now: datetime) -> ValidationRules:
    """The rules ingestion applies, with the configured catalog, at `now`."""
    return ValidationRules(load_catalog(settings.touchpoint_catalog_file), now,
                           settings.max_future_skew_s)
