"""Letting kafka-python's per-record futures be freed by reference counting.

A record's `FutureRecordMetadata` keeps its batch's `FutureProduceResult`, and the batch
keeps the record future's callbacks: a reference cycle per record sent. Left alone, every
record becomes work for the cyclic garbage collector, whose pauses (several milliseconds at a
few thousand records a second) land on whatever requests the process is serving. Once a
record's future is done, dropping its link to the batch breaks the cycle.
"""

from __future__ import annotations

from typing import Any


def release(future: Any) -> None:
    """Breaks the record future's cycle with its batch; only once the future is done."""
    if getattr(future, "is_done", False) and hasattr(future, "_produce_future"):
        future._produce_future = None


def release_when_done(future: Any) -> None:
    """For a future nobody waits on: breaks its cycles as soon as it resolves. Add it after
    the other callbacks; it drops them too (they have run by then)."""
    future.add_both(_release_resolved, future)


def _release_resolved(future: Any, _outcome: Any) -> None:
    release(future)
    future._callbacks, future._errbacks = [], []  # they hold this function, bound to future
