"""Loading 100,000 simulated customer histories and timing the profile consumer's fold.

The histories go onto the touchpoint topic before the profile service starts, so the fold is
timed on its own: from the first committed progress of the consumer group to the moment its
committed offsets reach the end of the topic. Redis memory is read before and after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import redis
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.bench import dataset
from services.streaming.publisher import kafka_client_options
from shared.redis_keys import profile_pattern
from shared.settings import Settings
from shared.stream import Record
from shared.touchpoints import load_catalog


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), transient=True)


def produce_history(settings: Settings, now: datetime, customers: int,
                    pace: Callable[[int], bool] | None = None) -> dict[str, Any]:
    """Simulated histories of `customers` customers onto the touchpoint topic.

    `pace(sent)` is called after every chunk of acknowledged records and may block: the
    embedded broker keeps only the latest ~12,500 records per partition, so a history larger
    than that must be produced no faster than the consumers read it. When `pace` answers
    False the loading stops there (time budget spent).
    """
    simulator = dataset.history_simulator(now)
    catalog = load_catalog(settings.touchpoint_catalog_file)
    identified: list[str] = []
    generated = [0]

    def records() -> Iterator[Record]:
        for history in simulator.customers(customers):
            generated[0] += 1
            if any("customer_id" in e for e in history.events):
                identified.append(history.customer_id)
            yield from dataset.history_records_of(history, catalog, now)

    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("loading simulated histories onto Kafka", total=customers)
        sent = _produce(settings, records(),
                        lambda: progress.update(task, completed=generated[0]), pace)
    return {"customers": generated[0], "events": sent, "identified_customers": identified,
            "produce_s": round(time.perf_counter() - started, 2)}


def produce_records(settings: Settings, records: Iterator[Record]) -> int:
    """Records onto the touchpoint topic of `settings`; returns how many."""
    return _produce(settings, records, lambda: None)


def _produce(settings: Settings, records: Iterator[Record], tick: Callable[[], None],
             pace: Callable[[int], bool] | None = None) -> int:
    sent = 0
    try:
        from confluent_kafka import Producer
    except ImportError:
        Producer = None
    if Producer is None:
        from services.streaming.publisher import KafkaPublisher

        publisher = KafkaPublisher(settings)
        producer = publisher.producer()
        for record in records:
            producer.send(settings.topic_touchpoints, key=record.key, value=record.value,
                          headers=record.headers)
            sent += 1
            if sent % 5000 == 0:
                tick()
                if pace is not None:
                    producer.flush(timeout=60)
                    if not pace(sent):
                        break
        producer.flush(timeout=300)
        publisher.close()
        return sent
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 20,
                         "compression.type": settings.kafka_compression, "log_level": 3})
    failures: list[Any] = []

    def delivered(error, _message) -> None:
        if error is not None:
            failures.append(error)

    for record in records:
        while True:
            try:
                producer.produce(settings.topic_touchpoints, key=record.key, value=record.value,
                                 headers=record.headers, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if sent % 5000 == 0:
            producer.poll(0)
            tick()
            if pace is not None:
                producer.flush(60)
                if not pace(sent):
                    break
    producer.flush(300)
    tick()
    if failures:
        raise RuntimeError(f"{len(failures)} history records were not acknowledged: "
                           f"{failures[0]}")
    return sent


# A fold's end is seen at most this late: its rate is under-stated by up to this much time
# (0.5 s had cost up to 5% of a 10 s fold).
FOLD_SAMPLE_EVERY_S = 0.1


def timeline(samples: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """About 60 of the (time, committed) samples, times from the first sample."""
    return [(round(t - samples[0][0], 1), n) for t, n in samples[::max(1, len(samples) // 60)]]


class GroupProgress:
    """Committed offsets of a consumer group (the profile group unless named) against the end
    of the touchpoint topic."""

    def __init__(self, settings: Settings, group_id: str | None = None):
        from kafka import KafkaConsumer, TopicPartition

        self.topic = settings.topic_touchpoints
        self.consumer = KafkaConsumer(**kafka_client_options(settings),
                                      group_id=group_id or settings.kafka_consumer_group,
                                      enable_auto_commit=False)
        self._partition = TopicPartition
        self.partitions: list = []
        self._refresh()

    def _refresh(self) -> None:
        if not self.partitions:  # the topic may not exist yet
            partitions = self.consumer.partitions_for_topic(self.topic) or set()
            self.partitions = [self._partition(self.topic, p) for p in sorted(partitions)]

    def end_offsets(self) -> int:
        self._refresh()
        return sum(self.consumer.end_offsets(self.partitions).values()) if self.partitions else 0

    def committed(self) -> int:
        self._refresh()
        return sum(self.consumer.committed(tp) or 0 for tp in self.partitions)

    def close(self) -> None:
        self.consumer.close()


class PacedFold:
    """Keeps the consumers' lag under `max_lag` while producing, and times the fold.

    Paces to the slowest of the profile group and `other_groups` (the analytics group): the
    embedded broker drops what a group has not read in time. Samples the profile group's
    (time, committed offsets) so that the fold rate runs from the first committed progress
    to the last record, as `wait_for_fold` does.
    """

    def __init__(self, settings: Settings, max_lag: int = 30_000, timeout_s: float = 300,
                 alive: Callable[[], bool] = lambda: True, other_groups: tuple[str, ...] = ()):
        self.group = GroupProgress(settings)
        self.others = [GroupProgress(settings, group) for group in other_groups]
        self.max_lag = max_lag
        self.deadline = time.monotonic() + timeout_s
        self.alive = alive
        self.samples: list[tuple[float, int]] = []
        self.gave_up = False

    def sample(self) -> int:
        done = self.group.committed()
        self.samples.append((time.perf_counter(), done))
        return done

    def __call__(self, sent: int) -> bool:
        """Blocks while the slower group is too far behind; False once the time budget is
        spent."""
        while sent - min([self.sample()] + [g.committed() for g in self.others]) > self.max_lag:
            if time.monotonic() > self.deadline or not self.alive():
                self.gave_up = True
                return False
            time.sleep(0.25)
        if time.monotonic() > self.deadline:
            self.gave_up = True
        return not self.gave_up

    def finish(self, total: int) -> dict[str, Any]:
        """Waits for the rest of the fold; the same summary as `wait_for_fold`."""
        # After a stop, the records already sent are still folded (up to 60 s more).
        limit = max(self.deadline, time.monotonic() + 60) if self.gave_up else self.deadline
        while self.sample() < total and time.monotonic() < limit and self.alive():
            time.sleep(FOLD_SAMPLE_EVERY_S)
        for group in (self.group, *self.others):
            group.close()
        moving = [(t, n) for t, n in self.samples if n > 0]
        last_time, last_done = self.samples[-1]
        if len(moving) < 2:
            return {"drained": False, "committed": last_done, "end_offsets": total,
                    "reason": "the profile consumer group committed nothing"}
        elapsed = max(last_time - moving[0][0], 1e-9)
        rate = round((last_done - moving[0][1]) / elapsed, 1)
        result = {"drained": last_done >= total, "end_offsets": total, "records": total,
                  "committed": last_done, "drain_s": round(elapsed, 2),
                  "fold_events_per_s": rate,
                  "timeline": timeline(self.samples)}
        if last_done < total:
            result["reason"] = (f"consumer committed {last_done:,} of {total:,} records within "
                                "the time limit")
        return result


def wait_for_closed_journeys(settings: Settings, timeout_s: float,
                             alive: Callable[[], bool]) -> dict[str, Any]:
    """Waits until the analytics consumer closed every journey quiet for longer than the
    window (it closes a backlog a little per poll); how many there were and how long it took."""
    from services.profiles.analytics.api import build_reader

    client = redis.Redis.from_url(settings.redis_url)
    store = build_reader(settings, client).store
    started = time.monotonic()
    try:
        first = waiting = store.quiet_journeys_waiting()
        with _progress() as progress:
            task = progress.add_task("analytics closing quiet journeys", total=first)
            while waiting and time.monotonic() - started < timeout_s and alive():
                time.sleep(FOLD_SAMPLE_EVERY_S)
                waiting = store.quiet_journeys_waiting()
                progress.update(task, completed=first - waiting)
    finally:
        client.close()
    return {"quiet_journeys": first, "left": waiting,
            "seconds": round(time.monotonic() - started, 1)}


def used_memory(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


# Key families of the memory breakdown, by the end of the key name after the namespace.
MEMORY_FAMILIES = (
    ("customer profiles", lambda k: k.startswith(":{c:") and k.endswith("}:p")),
    ("visitor profiles", lambda k: k.startswith(":{a:") and k.endswith("}:p")),
    ("aliases", lambda k: k.endswith("}:alias")),
    ("timeline lists of earlier versions", lambda k: k.endswith("}:t")),
    ("analytics per-person state", lambda k: k.startswith(":an:c:")),
    ("analytics open-journey index", lambda k: k == ":an:open"),
    ("analytics aggregates", lambda k: k.startswith(":an:d:")),
)


def memory_by_family(settings: Settings, people: int) -> dict[str, dict[str, float]]:
    """MEMORY USAGE of every key of the namespace, summed by key family: keys and bytes per
    customer. Redis's own bookkeeping of each key (its entry in the key table, an expiry)
    is not in these figures, so they add up to less than the used-memory delta."""
    client = redis.Redis.from_url(settings.redis_url)
    namespace = settings.redis_namespace
    totals: dict[str, list[int]] = {}
    try:
        batch: list[bytes] = []

        def measure() -> None:
            pipe = client.pipeline(transaction=False)
            for key in batch:
                pipe.memory_usage(key, samples=0)
            for key, size in zip(batch, pipe.execute(), strict=True):
                rest = key.decode(errors="replace")[len(namespace):]
                family = next((name for name, test in MEMORY_FAMILIES if test(rest)), "other")
                entry = totals.setdefault(family, [0, 0])
                entry[0] += 1
                entry[1] += size or 0
            batch.clear()

        for key in client.scan_iter(match=f"{namespace}:*", count=2000):
            batch.append(key)
            if len(batch) >= 2000:
                measure()
        measure()
    finally:
        client.close()
    people = max(1, people)
    return {family: {"keys": count, "bytes_per_customer": round(size / people, 1)}
            for family, (count, size) in sorted(totals.items(), key=lambda kv: -kv[1][1])}


def reset_command_stats(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.config_resetstat()
    finally:
        client.close()


def command_stats(redis_url: str, top: int = 8) -> list[dict[str, Any]]:
    """The Redis commands that took the most server time since the last reset."""
    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    rows = [{"command": name.removeprefix("cmdstat_"), "calls": int(v["calls"]),
             "usec": int(v["usec"]), "usec_per_call": float(v["usec_per_call"])}
            for name, v in stats.items()]
    rows.sort(key=lambda row: row["usec"], reverse=True)
    return rows[:top]


def count_profiles(settings: Settings) -> dict[str, int]:
    client = redis.Redis.from_url(settings.redis_url)
    counts = {"customers": 0, "anonymous": 0}
    try:
        for key in client.scan_iter(match=profile_pattern(settings.redis_namespace),
                                    count=5000):
            subject = key.decode().split("{", 1)[1].split("}", 1)[0]
            counts["anonymous" if subject.startswith("a:") else "customers"] += 1
    finally:
        client.close()
    return counts


def wait_for_fold(settings: Settings, total: int, timeout_s: float,
                  alive: Callable[[], bool], group_id: str | None = None,
                  label: str = "profile consumer folding the history") -> dict[str, Any]:
    """Waits until the group (the profile group unless named) committed every record; the
    fold rate and its timeline."""
    progress_reader = GroupProgress(settings, group_id)
    end = progress_reader.end_offsets()
    samples: list[tuple[float, int]] = []
    first_progress = None
    deadline = time.monotonic() + timeout_s
    try:
        with _progress() as progress:
            task = progress.add_task(label, total=end)
            while time.monotonic() < deadline and alive():
                done = progress_reader.committed()
                now = time.perf_counter()
                samples.append((now, done))
                if done > 0 and first_progress is None:
                    first_progress = (now, done)
                progress.update(task, completed=done)
                if done >= end:
                    break
                time.sleep(FOLD_SAMPLE_EVERY_S)
    finally:
        progress_reader.close()
    last_time, last_done = samples[-1] if samples else (0.0, 0)
    if last_done >= end and (first_progress is None or last_done == first_progress[1]):
        return {"drained": True, "end_offsets": end, "records": total, "drain_s": 0.0,
                "fold_events_per_s": None, "timeline": []}
    if first_progress is None:
        return {"drained": False, "end_offsets": end, "committed": last_done,
                "reason": "the consumer group committed nothing" if alive()
                else "profile service exited"}
    if last_done < end:
        elapsed = max(last_time - first_progress[0], 1e-9)
        return {"drained": False, "end_offsets": end, "committed": last_done,
                "fold_events_per_s": round((last_done - first_progress[1]) / elapsed, 1),
                "reason": f"consumer committed {last_done:,} of {end:,} records in "
                          f"{timeout_s:.0f} s" if alive() else "profile service exited"}
    # Rate between the first and last committed progress: excludes start-up and group join.
    elapsed = max(last_time - first_progress[0], 1e-9)
    folded = last_done - first_progress[1]
    return {"drained": True, "end_offsets": end, "records": total,
            "drain_s": round(elapsed, 2), "fold_events_per_s": round(folded / elapsed, 1),
            "timeline": timeline(samples)}
