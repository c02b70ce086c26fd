"""When consumers commit: at most every interval while records come, at once when idle."""

from __future__ import annotations

from kafka import TopicPartition
from kafka.errors import CommitFailedError

from services.streaming.commit_schedule import CommitBeforeRevoke, CommitSchedule


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_to_commit_before_a_batch_is_durable():
    schedule = CommitSchedule(0.25, Clock())
    assert not schedule.due(polled_anything=True)
    assert not schedule.due(polled_anything=False)


def test_commits_at_most_every_interval_while_records_keep_coming():
    clock = Clock()
    schedule = CommitSchedule(0.25, clock)
    schedule.processed()
    clock.now += 0.1
    assert not schedule.due(polled_anything=True)
    clock.now += 0.2
    assert schedule.due(polled_anything=True)
    schedule.committed()
    schedule.processed()
    clock.now += 0.1
    assert not schedule.due(polled_anything=True)


def test_commits_at_once_when_a_poll_comes_back_empty():
    clock = Clock()
    schedule = CommitSchedule(60.0, clock)
    schedule.processed()
    assert schedule.due(polled_anything=False)
    schedule.committed()
    assert not schedule.due(polled_anything=False)


def test_zero_interval_commits_after_every_batch():
    schedule = CommitSchedule(0.0, Clock())
    schedule.processed()
    assert schedule.due(polled_anything=True)


def test_a_revoke_commits_the_revoked_partitions_and_survives_a_refused_commit():
    seen = []
    revoked = {TopicPartition("t", 1)}
    CommitBeforeRevoke(seen.append).on_partitions_revoked(revoked)
    assert seen == [revoked]

    def refuse(_partitions):
        raise CommitFailedError("rebalance in progress")

    CommitBeforeRevoke(refuse).on_partitions_revoked(revoked)  # logged, not raised
