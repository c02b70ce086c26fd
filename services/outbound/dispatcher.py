"""Decisions in, signed deliveries out, at least once.

Two loops, each in its own thread, stopped by one `threading.Event`:

- intake: a kafka-python consumer of `decisions.v1` turns each decision into one message per
  interested subscription (enqueue is idempotent by message id) and commits offsets only after
  Redis has them, so a crash redelivers decisions and never loses them;
- delivery: claims due messages with a lease, POSTs them with Standard Webhooks headers, and
  records each attempt in the delivery log; failures come back after exponential backoff with
  jitter (or the subscriber's Retry-After, whichever is later) until the retry budget is spent,
  then the message is dead (`touchpoint webhooks retry` revives it).

Holdout decisions are never sent: they are the control group, and a subscriber acting on them
would contaminate the lift measurement.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from pydantic import ValidationError

from services.outbound import signing
from services.outbound.backoff import retry_delay
from services.outbound.messages import decision_message, wants
from services.outbound.store import OutboundStore
from services.streaming.publisher import (
    CONSUMER_CLOSE_TIMEOUT_MS,
    CONSUMER_COMMIT_TIMEOUT_MS,
    kafka_client_options,
)
from shared.decisions import DecisionRecord
from shared.errors import NotFoundError, StoreUnavailableError
from shared.settings import Settings

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_s: float = 30.0
    cap_s: float = 3600.0
    lease_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.outbound_max_attempts, settings.outbound_backoff_base_s,
                   settings.outbound_backoff_max_s, max(30.0, settings.outbound_timeout_s * 3))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class Deliverer:
    """Delivers due messages; the HTTP client (and so its transport) is injected."""

    def __init__(self, store: OutboundStore, client: httpx.Client, policy: RetryPolicy,
                 clock: Clock = time.time, unit_random: Callable[[], float] = random.random):
        self.store = store
        self.client = client
        self.policy = policy
        self.clock = clock
        self.unit_random = unit_random

    def deliver_due(self, limit: int = 50) -> int:
        claimed = self.store.claim_due(self.clock(), self.policy.lease_s, limit)
        for sub_id, msg_id in claimed:
            self.deliver(sub_id, msg_id)
        return len(claimed)

    def deliver(self, sub_id: str, msg_id: str) -> str:
        try:
            subscription = self.store.get(sub_id)
            message = self.store.message(sub_id, msg_id)
        except NotFoundError:
            self.store.drop_due(sub_id, msg_id)
            return "gone"
        if message.state != "pending":
            self.store.drop_due(sub_id, msg_id)
            return message.state
        if subscription.disabled:  # kept queued; enabling the subscription resumes it
            self.store.postpone(sub_id, msg_id, self.clock() + self.policy.lease_s)
            return "disabled"
        started = self.clock()
        headers = signing.headers(subscription.secret, message.id, int(started), message.body)
        status, error, retry_after = None, None, None
        try:
            response = self.client.post(subscription.url, content=message.body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error, retry_after = f"HTTP {status}", _retry_after(response)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempt = {"attempt": message.attempts + 1, "at": started, "status": status,
                   "error": error, "duration_ms": round((self.clock() - started) * 1000, 1)}
        if error is None:
            state, next_at = "delivered", None
        elif attempt["attempt"] >= self.policy.max_attempts:
            state, next_at = "dead", None
            log.warning("webhook message %s to %s is dead after %d attempts: %s", msg_id,
                        sub_id, attempt["attempt"], error)
        else:
            delay = retry_delay(attempt["attempt"], self.policy.base_s, self.policy.cap_s,
                                self.unit_random())
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.policy.cap_s))
            state, next_at = "pending", started + delay
        self.store.record_attempt(sub_id, msg_id, attempt, state, next_at)
        return state


class DecisionIntake:
    """Turns decision records into queued messages for every interested subscription."""

    def __init__(self, store: OutboundStore, clock: Clock = time.time):
        self.store = store
        self.clock = clock

    def handle(self, values: list[bytes]) -> int:
        subscriptions = [s for s in self.store.all() if not s.disabled]
        queued = 0
        for value in values:
            try:
                decision = DecisionRecord.model_validate_json(value)
            except ValidationError as exc:
                log.error("skipping an unreadable decision record: %s", exc)
                continue
            if decision.holdout or not decision.actions:
                continue
            message = decision_message(decision)
            for subscription in subscriptions:
                if wants(subscription.events, message.type):
                    queued += self.store.enqueue(subscription.id, message, self.clock())
        return queued


def build_decision_consumer(settings: Settings, from_beginning: bool = False) -> KafkaConsumer:
    return KafkaConsumer(
        settings.topic_decisions, **kafka_client_options(settings),
        group_id=settings.outbound_consumer_group, enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        session_timeout_ms=10_000, heartbeat_interval_ms=1_000)


def rewind(consumer: KafkaConsumer) -> None:
    """Back to the last committed offsets, so a batch that failed half-way is read again
    (poll has already moved the in-memory position past it)."""
    for partition in consumer.assignment():
        committed = consumer.committed(partition)
        if committed is not None:
            consumer.seek(partition, committed)


def _run_intake(consumer: KafkaConsumer, intake: DecisionIntake,
                stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            try:
                batch = consumer.poll(timeout_ms=500)
                values = [r.value for records in batch.values() for r in records]
                if values:
                    intake.handle(values)
                    # Only after Redis holds the messages.
                    consumer.commit(timeout_ms=CONSUMER_COMMIT_TIMEOUT_MS)
            except (KafkaError, StoreUnavailableError, redis.RedisError) as exc:
                log.warning("outbound intake paused: %s", exc)
                stop.wait(2.0)
                try_rewind(consumer)
    finally:
        consumer.close(timeout_ms=CONSUMER_CLOSE_TIMEOUT_MS)


def try_rewind(consumer: KafkaConsumer) -> None:
    try:
        rewind(consumer)
    except KafkaError as exc:  # the next rebalance or restart resumes from the commit
        log.warning("could not rewind to the committed offsets: %s", exc)


def _run_delivery(deliverer: Deliverer, stop: threading.Event, idle_s: float) -> None:
    try:
        while not stop.is_set():
            try:
                if deliverer.deliver_due() == 0:
                    stop.wait(idle_s)
            except (StoreUnavailableError, redis.RedisError) as exc:
                log.warning("outbound delivery paused: %s", exc)
                stop.wait(2.0)
    finally:
        deliverer.client.close()


def start_dispatcher(
    settings: Settings, redis_client: redis.Redis, stop_event: threading.Event,
    transport: httpx.BaseTransport | None = None, from_beginning: bool = False,
    idle_s: float = 0.5, clock: Clock = time.time,
) -> list[threading.Thread]:
    """Starts the intake and delivery threads; they stop when `stop_event` is set."""
    store = OutboundStore(redis_client, settings.redis_namespace)
    client = httpx.Client(transport=transport, timeout=settings.outbound_timeout_s,
                          follow_redirects=False,
                          headers={"user-agent": "touchpoint-webhooks/1"})
    deliverer = Deliverer(store, client, RetryPolicy.from_settings(settings), clock)
    consumer = build_decision_consumer(settings, from_beginning)
    threads = [
        threading.Thread(target=_run_intake, args=(consumer, DecisionIntake(store, clock),
                                                   stop_event),
                         name="outbound-intake", daemon=True),
        threading.Thread(target=_run_delivery, args=(deliverer, stop_event, idle_s),
                         name="outbound-delivery", daemon=True),
    ]
    for thread in threads:
        thread.start()
    return threads
