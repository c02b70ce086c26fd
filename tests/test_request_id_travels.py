"""A request id given to ingestion reaches the profile update's log line through Kafka."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from services.ingestion.app import create_app as create_ingestion_app
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import ProfileStore
from tests.profiles.test_consumer import RunningConsumer, counted, wait_for


def test_request_id_reaches_the_profile_update_log(settings, redis_client, caplog):
    store = ProfileStore(redis_client, settings.redis_namespace,
                         timeline_capacity=settings.profile_timeline_length,
                         dedupe_capacity=settings.profile_dedupe_window)
    caplog.set_level(logging.DEBUG, logger="services.profiles.consumer")
    client = TestClient(create_ingestion_app(settings))
    event = {"customer_id": "c-trace", "occurred_at": datetime.now(UTC).isoformat(),
             "touchpoint": "web.visit"}
    response = client.post("/v1/events", json=event, headers={"x-request-id": "trace-me-42"})
    assert response.status_code == 202
    assert response.headers["x-request-id"] == "trace-me-42"
    metrics = ProfileMetrics()
    with RunningConsumer(settings, store, metrics):
        wait_for(lambda: counted(metrics) >= 1)
    updates = [r for r in caplog.records if r.getMessage().startswith("profile update")]
    assert [getattr(r, "request_id", None) for r in updates] == ["trace-me-42"]
