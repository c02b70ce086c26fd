"""Rebuilding every profile from the beginning of the topics into a fresh namespace.

    1. a new generation namespace is registered (erasures reach it while it is built);
    2. every partition of the event and decision topics is read from its beginning, without
       a consumer group, through the same steps as the live consumer;
    3. once caught up with the end offsets seen at the start, the generation pointer is
       switched: the live consumers and the API move to the new namespace on their next batch
       or read;
    4. the replay keeps reading until it is past the offsets the live group has committed, so
       nothing the live consumers wrote to the old namespace before switching is missing; the
       overlap is harmless, the dedupe skips it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from kafka import KafkaConsumer, TopicPartition

from services.profiles.consumer import BatchProcessor
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import ProfileStore
from services.streaming.publisher import InMemoryPublisher, kafka_client_options
from shared import redis_keys as keys
from shared.settings import Settings
from shared.touchpoints import TouchpointCatalog

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (records done, records to do)


@dataclass
class ReplayReport:
    generation: str
    namespace: str
    previous_namespace: str
    records: int
    applied: int
    duplicates: int
    dead_letters: int
    seconds: float


def new_generation(now: datetime) -> str:
    return "r" + now.strftime("%Y%m%dT%H%M%S")


def _reached(positions: dict[TopicPartition, int], goal: dict[TopicPartition, int]) -> bool:
    return all(positions.get(tp, 0) >= target for tp, target in goal.items())


def _committed_by_live_group(settings: Settings, partitions: list[TopicPartition]
                             ) -> dict[TopicPartition, int]:
    probe = KafkaConsumer(**kafka_client_options(settings),
                          group_id=settings.kafka_consumer_group, enable_auto_commit=False)
    try:
        return {tp: probe.committed(tp) or 0 for tp in partitions}
    finally:
        probe.close()


def replay(
    settings: Settings,
    client: redis.Redis,
    catalog: TouchpointCatalog,
    progress: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    settle_s: float = 2.0,
) -> ReplayReport:
    started = time.monotonic()
    generation = new_generation(now())
    base = settings.redis_namespace
    live = ProfileStore(client, base)
    previous = live.refresh_generation()
    client.sadd(f"{base}:generations", generation)
    store = ProfileStore(client, base, settings.profile_timeline_length,
                         settings.profile_dedupe_window, generation=generation)
    processor = BatchProcessor(store, catalog, InMemoryPublisher(), settings, ProfileMetrics(),
                               now=now)
    consumer = KafkaConsumer(**kafka_client_options(settings), group_id=None,
                             enable_auto_commit=False,
                             max_poll_records=settings.profile_consumer_batch_size)
    records = applied = duplicates = dead = 0
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in (settings.topic_touchpoints, settings.topic_decisions)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        beginning = consumer.beginning_offsets(partitions)
        targets = consumer.end_offsets(partitions)
        total = sum(targets[tp] - beginning[tp] for tp in partitions)

        positions = dict(beginning)

        def run_until(goal: dict[TopicPartition, int]) -> None:
            nonlocal records, applied, duplicates, dead
            idle_polls = 0
            while not _reached(positions, goal):
                polled = consumer.poll(timeout_ms=200)
                batch = [r for rs in polled.values() for r in rs]
                if not batch:
                    idle_polls += 1
                    if idle_polls % 5 == 0:  # offsets may skip (compaction, markers)
                        for tp in goal:
                            position = consumer.position(tp, timeout_ms=1000)
                            if position is not None:
                                positions[tp] = max(positions[tp], position)
                    continue
                for record in batch:
                    tp = TopicPartition(record.topic, record.partition)
                    positions[tp] = max(positions[tp], record.offset + 1)
                result = processor.process(batch)
                records += len(batch)
                applied += result.applied
                duplicates += result.duplicates
                dead += result.dead_lettered
                if progress:
                    progress(records, max(total, records))

        run_until(targets)
        client.set(keys.generation_pointer_key(base), generation)
        log.info("switched profiles to generation %s (was %s)", generation, previous)
        # The live group may still write a batch read before the switch to the old namespace;
        # read past whatever it commits in the next moments.
        deadline = time.monotonic() + settle_s
        while True:
            committed = _committed_by_live_group(settings, partitions)
            run_until(committed)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    finally:
        consumer.close()
        client.srem(f"{base}:generations", generation)
    return ReplayReport(generation, store.namespace, previous, records, applied, duplicates,
                        dead, round(time.monotonic() - started, 2))


def drop_namespace(client: redis.Redis, namespace: str, base: str) -> int:
    """Deletes every profile key of an old namespace (never tombstones or the pointer)."""
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{namespace}:{{*}}:*", count=1000):
        if key.endswith(b":erased"):
            continue
        batch.append(key)
        if len(batch) >= 500:
            removed += client.unlink(*batch)
            batch = []
    if batch:
        removed += client.unlink(*batch)
    return removed
