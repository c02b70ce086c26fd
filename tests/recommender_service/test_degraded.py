"""A Redis that hangs or is gone: the recommender answers with the documented fallback."""

from __future__ import annotations

import time

import msgpack
import pytest
import redis
from fastapi.testclient import TestClient

from services.devstack.redis import EmbeddedRedis
from services.recommender.app import create_app
from services.recommender.decision_log import InMemoryDecisionLog
from services.streaming.publisher import InMemoryPublisher
from shared import redis_keys as keys
from tests.recommender_service.conftest import ALL_OPT_IN, profile_state, zone_at_local_hour


def until_healthy(client, body, timeout_s: float = 10.0) -> dict:
    """The first answer that was not degraded (a busy machine can miss 50 ms now and then)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.post("/v1/recommendations", json=body).json()
        if not answer["degraded"] or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


@pytest.fixture
def own_redis():
    with EmbeddedRedis() as server:
        yield server


def test_hung_redis_gives_a_fast_degraded_answer_then_recovers(service_settings, own_redis):
    settings = service_settings.model_copy(update={"redis_url": own_redis.url,
                                                   "recommender_profile_timeout_ms": 50})
    writer = redis.Redis.from_url(own_redis.url)
    key = keys.profile_key(settings.redis_namespace, keys.customer_subject("c-1"))
    writer.set(key, msgpack.packb(profile_state(consent=ALL_OPT_IN)))
    sink = InMemoryDecisionLog()
    app = create_app(settings, decision_log=sink, feedback_publisher=InMemoryPublisher(), seed=2)
    body = {"customer_id": "c-1", "context": {"timezone": zone_at_local_hour(12)}, "k": 3}
    with TestClient(app) as client:
        healthy = until_healthy(client, body)
        assert healthy["degraded"] is False and healthy["known_customer"] is True

        own_redis.pause()
        try:
            answers, slowest = [], 0.0
            for _ in range(5):
                started = time.perf_counter()
                response = client.post("/v1/recommendations", json=body)
                slowest = max(slowest, time.perf_counter() - started)
                assert response.status_code == 200
                answers.append(response.json())
            ready = client.get("/readyz")
        finally:
            own_redis.resume()
        # The 50 ms profile timeout bounds the wait (generous margin for a busy machine).
        assert slowest < 1.0
        for answer in answers:
            assert answer["degraded"] is True
            assert answer["degraded_reason"] == "profile_unavailable"
            assert answer["policy"] == "fallback" and answer["known_customer"] is False
            # Consent is unknown without the profile: nobody is messaged on a consent channel.
            assert all(a["channel"] in {"chat", "none", "hotline"} for a in answer["actions"])
            assert "flash_sale_zalo" in answer["rejected"]
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] != "ok"

        again = until_healthy(client, body)
        assert again["degraded"] is False and again["known_customer"] is True
        metrics = client.get("/metrics").text
    fallbacks = [r for r in sink.records if r.policy == "fallback"]
    # The five during the pause, plus any a busy machine caused while waiting for health.
    assert len(fallbacks) >= 5  # degraded decisions are logged too, with their propensities
    assert (f'touchpoint_recommender_fallbacks_total{{reason="profile_unavailable"}} '
            f'{float(len(fallbacks))}') in metrics
    writer.close()


def test_stopped_redis_also_degrades(service_settings, own_redis):
    settings = service_settings.model_copy(update={"redis_url": own_redis.url,
                                                   "recommender_profile_timeout_ms": 50})
    app = create_app(settings, decision_log=InMemoryDecisionLog(),
                     feedback_publisher=InMemoryPublisher())
    with TestClient(app) as client:
        own_redis.stop()
        response = client.post("/v1/recommendations", json={"customer_id": "c-2"})
    assert response.status_code == 200
    assert response.json()["degraded"] is True
