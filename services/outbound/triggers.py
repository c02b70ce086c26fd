"""Profile changes that make a new next-best action due: a bad experience (a complaint, a
failed delivery, a warranty call: service recovery is due), a purchase (the customer enters
post-purchase: care, review, cross-sell) or a cancellation/refund (win-back or recovery).

A kafka-python consumer of `touchpoints.v1` asks the recommender for a decision when such an
event arrives for a known customer; the decision is logged to `decisions.v1` like any other,
so subscribers receive it through the dispatcher. A per-customer, per-reason cooldown in Redis
(SET NX EX) keeps a burst of events (or a redelivery) from asking twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from kafka import KafkaConsumer
from pydantic import ValidationError

from services.outbound import keys
from services.outbound.dispatcher import try_rewind
from services.outbound.store import OutboundStore
from services.streaming.publisher import (
    CONSUMER_CLOSE_TIMEOUT_MS,
    CONSUMER_COMMIT_TIMEOUT_MS,
    kafka_client_options,
)
from shared.events import TouchpointEvent
from shared.settings import Settings
from shared.stream import decode_event
from shared.touchpoints import TouchpointCatalog

log = logging.getLogger(__name__)
TRIGGER_SIGNALS = ("bad_experience", "refund", "purchase")  # first match names the reason
Decide = Callable[[str, dict], None]  # (customer_id, context) -> asks the recommender


def trigger_reason(event: TouchpointEvent, catalog: TouchpointCatalog) -> str | None:
    """Why this event makes a new next-best action due, or None (pure)."""
    entry = catalog.get(event.touchpoint)
    if entry is None or event.customer_id is None or event.source == "recommender":
        return None
    return next((signal for signal in TRIGGER_SIGNALS if entry.has(signal)), None)


class ProfileTriggers:
    def __init__(self, redis_client: redis.Redis, namespace: str, catalog: TouchpointCatalog,
                 decide: Decide, cooldown_s: int = 3600,
                 wanted: Callable[[], bool] = lambda: True):
        self.wanted = wanted  # a decision nobody receives would still count as a contact
        self.redis = redis_client
        self.namespace = namespace
        self.catalog = catalog
        self.decide = decide
        self.cooldown_s = cooldown_s

    def handle(self, values: list[bytes]) -> int:
        asked = 0
        if not self.wanted():
            return asked
        for value in values:
            try:
                event = decode_event(value)
            except ValidationError:
                continue  # the profile consumer dead-letters unreadable records
            reason = trigger_reason(event, self.catalog)
            if reason is None:
                continue
            key = f"{keys.due(self.namespace)}:trigger:{reason}:{event.customer_id}"
            if not self.redis.set(key, event.event_id, nx=True, ex=self.cooldown_s):
                continue
            try:
                self.decide(event.customer_id, {"trigger": reason,
                                                "trigger_touchpoint": event.touchpoint,
                                                "phase": str(event.phase or "")})
            except Exception:
                self.redis.delete(key)  # let the re-read batch ask again
                raise
            asked += 1
        return asked


def subscribed(store: OutboundStore, cache_s: float = 5.0) -> Callable[[], bool]:
    """True while an enabled subscription exists (looked up at most every `cache_s`)."""
    state = {"at": float("-inf"), "answer": False}

    def check() -> bool:
        now = time.monotonic()
        if now - state["at"] >= cache_s:
            state["answer"] = any(not sub.disabled for sub in store.all())
            state["at"] = now
        return bool(state["answer"])

    return check


def start_triggers(settings: Settings, redis_client: redis.Redis, catalog: TouchpointCatalog,
                   decide: Decide, stop_event: threading.Event,
                   from_beginning: bool = False) -> threading.Thread:
    consumer = KafkaConsumer(
        settings.topic_touchpoints, **kafka_client_options(settings),
        group_id=f"{settings.outbound_consumer_group}-triggers", enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        session_timeout_ms=10_000, heartbeat_interval_ms=1_000)
    triggers = ProfileTriggers(redis_client, settings.redis_namespace, catalog, decide,
                               wanted=subscribed(OutboundStore(redis_client,
                                                               settings.redis_namespace)))

    def run() -> None:
        try:
            while not stop_event.is_set():
                try:
                    batch = consumer.poll(timeout_ms=500)
                    values = [r.value for records in batch.values() for r in records]
                    if values:
                        triggers.handle(values)
                        consumer.commit(timeout_ms=CONSUMER_COMMIT_TIMEOUT_MS)
                except Exception as exc:  # a failing recommender call must not kill the loop
                    log.warning("profile triggers paused: %s", exc)
                    stop_event.wait(2.0)
                    try_rewind(consumer)
        finally:
            consumer.close(timeout_ms=CONSUMER_CLOSE_TIMEOUT_MS)

    thread = threading.Thread(target=run, name="outbound-triggers", daemon=True)
    thread.start()
    return thread
