"""Across services: a decision on `decisions.v1` becomes contact history in the profile
(written by the real profile consumer), and the next decision respects it; the profile API
shows the features a decision reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from services.profiles.app import create_app as create_profile_app
from services.profiles.consumer import BatchProcessor, ProfileConsumer, build_kafka_consumer
from services.profiles.fold import event_delta
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import ProfileStore
from services.recommender.app import create_app
from services.recommender.profile_reader import decode_profile
from services.streaming.publisher import KafkaPublisher
from shared import redis_keys as keys
from shared.decisions import DecisionRecord
from shared.events import TouchpointEvent
from shared.stream import event_record
from shared.touchpoints import load_catalog
from tests.kafka_reading import read_topic
from tests.recommender_service.conftest import zone_at_local_hour


def wait_for(condition: Callable[[], bool], timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_contact_made_is_a_contact_remembered(service_settings, redis_client: redis.Redis):
    settings = service_settings
    publisher = KafkaPublisher(settings)
    store = ProfileStore(redis_client, settings.redis_namespace)
    processor = BatchProcessor(store, load_catalog(), publisher, settings, ProfileMetrics())
    consumer = ProfileConsumer(build_kafka_consumer(settings), processor, ProfileMetrics(),
                               [settings.topic_touchpoints, settings.topic_decisions],
                               poll_timeout_ms=100)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    key = keys.profile_key(settings.redis_namespace, keys.customer_subject("c-loop"))

    def state() -> dict:
        packed = redis_client.get(key)
        return decode_profile(packed) if packed else {}

    try:
        subscribe = TouchpointEvent(customer_id="c-loop", occurred_at=datetime.now(UTC),
                                    touchpoint="email.subscribe", consent={"email": "opt_in"})
        publisher.publish(settings.topic_touchpoints, [event_record(subscribe)])
        wait_for(lambda: "cs:email" in state().get("lw", {}))

        body = {"customer_id": "c-loop", "k": 1,
                "context": {"timezone": zone_at_local_hour(12)},
                "candidates": ["flash_sale_email", "review_digest_email"]}
        with TestClient(create_app(settings, seed=8)) as client:
            first = client.post("/v1/recommendations", json=body).json()
            sent = first["actions"][0]["action_id"]
            other = ({"flash_sale_email", "review_digest_email"} - {sent}).pop()
            client.app.state.runtime.decision_log.flush()
            wait_for(lambda: any(c[3] == first["decision_id"] for c in state().get("oc", [])))

            second = client.post("/v1/recommendations", json=body).json()
    finally:
        stop.set()
        thread.join(timeout=20)
        publisher.close()

    assert first["known_customer"] and first["actions"][0]["channel"] == "email"
    # The same action again is in its cooldown; another e-mail today exceeds the daily cap.
    assert second["actions"] == []
    assert second["rejected"][sent].startswith("cooldown:")
    assert second["rejected"][other].startswith("daily_cap:")


def test_the_profile_api_shows_the_features_a_decision_reads(
    service_settings, redis_client: redis.Redis,
):
    settings = service_settings.model_copy(update={"auth_disabled": True})
    now = datetime.now(UTC)
    events = [
        TouchpointEvent(customer_id="c-same", occurred_at=now - timedelta(days=days),
                        touchpoint=touchpoint, **fields)
        for days, touchpoint, fields in [
            (40, "web.visit", {}),
            (20, "email.subscribe", {"consent": {"email": "opt_in"}}),
            (12, "web.purchase", {"value": 450000, "currency": "VND"}),
            (6, "review.write", {"rating": 2}),
            (3, "email.click", {}),
            (1, "delivery.failed", {}),
        ]
    ]
    store = ProfileStore(redis_client, settings.redis_namespace)
    store.apply([event_delta(e, load_catalog(), "c:c-same") for e in events])

    with TestClient(create_profile_app(settings, redis_client=redis_client,
                                       run_consumers=False)) as profiles:
        shown = profiles.get("/v1/profiles/c-same").json()["features"]
    with TestClient(create_app(settings, seed=9)) as recommender:
        decided = recommender.post("/v1/recommendations", json={"customer_id": "c-same"}).json()
        recommender.app.state.runtime.decision_log.flush()
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_decisions, expected=1)
    logged = DecisionRecord.model_validate_json(records[0].value)

    assert logged.decision_id == decided["decision_id"]
    assert shown["orders"] == 1 and shown["bad_experience_open"] is True
    assert shown["consent_email"] is True and shown["phase"] == "post_purchase"
    # Same names and values; only the clock moved between the two reads.
    assert set(shown) <= set(logged.features)
    for name, value in shown.items():
        if isinstance(value, float):
            assert logged.features[name] == pytest.approx(value, rel=1e-4), name
        else:
            assert logged.features[name] == value, name
