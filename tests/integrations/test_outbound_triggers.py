"""Profile changes that make a new action due ask the recommender once per cooldown."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from kafka import KafkaProducer

from services.outbound.store import OutboundStore
from services.outbound.triggers import (
    ProfileTriggers,
    start_triggers,
    subscribed,
    trigger_reason,
)
from shared.events import ValidationRules, validate_event
from shared.stream import event_record
from shared.touchpoints import load_catalog

CATALOG = load_catalog()
NOW = datetime.now(UTC)


def event(touchpoint: str, customer: str | None = "c-1", event_id: str = "e-1",
          source: str = "api"):
    raw = {"event_id": event_id, "occurred_at": NOW.isoformat(), "touchpoint": touchpoint}
    raw.update({"customer_id": customer} if customer else {"anonymous_id": "anon-1"})
    if touchpoint == "order.paid":
        raw.update(value=100, currency="VND")
    return validate_event(raw, ValidationRules(CATALOG, NOW), source)


REASONS = [
    ("support.complaint", "c-1", "api", "bad_experience"),
    ("delivery.failed", "c-1", "webhook:haravan", "bad_experience"),
    ("order.paid", "c-1", "webhook:shopify", "purchase"),
    ("order.refunded", "c-1", "api", "refund"),
    ("web.visit", "c-1", "api", None),
    ("support.complaint", None, "api", None),  # anonymous visitors get no outreach
    ("order.paid", "c-1", "recommender", None),  # our own events never re-trigger
]


@pytest.mark.parametrize(("touchpoint", "customer", "source", "reason"), REASONS)
def test_trigger_reasons(touchpoint, customer, source, reason):
    assert trigger_reason(event(touchpoint, customer, source=source), CATALOG) == reason


def test_cooldown_and_failure_release(redis_client, test_id):
    calls: list[tuple[str, dict]] = []
    failing = {"left": 1}

    def decide(customer_id: str, context: dict) -> None:
        if failing["left"]:
            failing["left"] -= 1
            raise ConnectionError("recommender down")
        calls.append((customer_id, context))

    triggers = ProfileTriggers(redis_client, f"t{test_id}", CATALOG, decide, cooldown_s=60)
    complaint = event_record(event("support.complaint")).value
    with pytest.raises(ConnectionError):
        triggers.handle([complaint])
    assert triggers.handle([complaint]) == 1  # the failure released the cooldown
    assert triggers.handle([complaint, event_record(event("delivery.failed", event_id="e-2"))
                            .value]) == 0  # same reason within the cooldown
    assert triggers.handle([event_record(event("order.paid", event_id="e-3")).value]) == 1
    assert [c[1]["trigger"] for c in calls] == ["bad_experience", "purchase"]
    assert calls[0][1]["trigger_touchpoint"] == "support.complaint"


def test_triggers_from_the_real_topic(settings, redis_client):
    calls: list[str] = []
    done = threading.Event()

    def decide(customer_id: str, context: dict) -> None:
        calls.append(f"{customer_id}:{context['trigger']}")
        if len(calls) == 2:
            done.set()

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for item in (event("web.visit", "c-7", "v-1"), event("support.complaint", "c-7", "s-1"),
                 event("order.paid", "c-8", "o-1")):
        record = event_record(item)
        producer.send(settings.topic_touchpoints, key=record.key, value=record.value,
                      headers=record.headers)
    producer.flush()
    producer.close()
    OutboundStore(redis_client, settings.redis_namespace).create(
        "http://127.0.0.1:9/hook", "whsec_dGVzdA==", ["decision.created"], "test", time.time())
    stop = threading.Event()
    thread = start_triggers(settings, redis_client, CATALOG, decide, stop, from_beginning=True)
    done.wait(40)
    time.sleep(0.3)
    stop.set()
    thread.join(10)
    assert sorted(calls) == ["c-7:bad_experience", "c-8:purchase"]


def test_no_enabled_subscription_means_no_decision(redis_client, test_id):
    calls: list[str] = []
    store = OutboundStore(redis_client, f"t{test_id}")
    triggers = ProfileTriggers(redis_client, f"t{test_id}", CATALOG,
                               lambda customer, context: calls.append(customer),
                               wanted=subscribed(store, cache_s=0))
    complaint = event_record(event("support.complaint")).value
    assert triggers.handle([complaint]) == 0
    sub = store.create("http://127.0.0.1:9/hook", "whsec_dGVzdA==", ["decision.created"],
                       "test", time.time())
    store.set_disabled(sub.id, True)
    assert triggers.handle([complaint]) == 0
    store.set_disabled(sub.id, False)
    assert triggers.handle([complaint]) == 1
    assert len(calls) == 1
