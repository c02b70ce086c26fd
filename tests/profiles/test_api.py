"""The profile API over the real Redis (and the real broker for readiness)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from services.profiles.app import create_app
from services.profiles.fold import event_delta
from services.profiles.store import Outcome, ProfileStore
from shared.touchpoints import load_catalog
from tests.profiles.streams import T0, event

CATALOG = load_catalog()
NOW = T0 + timedelta(days=2)


@pytest.fixture
def api(settings, redis_client):
    settings = settings.model_copy(update={"auth_disabled": True})
    app = create_app(settings, redis_client=redis_client, run_consumers=False)
    app.state.runtime.now = lambda: NOW
    with TestClient(app) as client:
        yield client


@pytest.fixture
def store(settings, redis_client):
    return ProfileStore(redis_client, settings.redis_namespace)


def _load(store):
    events = [
        event("e1", "web.visit", 0, anonymous_id="v-1", context={"campaign": "tet"}),
        event("e2", "web.purchase", 10, value=450000, currency="VND"),
        event("e3", "delivery.failed", 60 * 24),
        event("e4", "email.subscribe", 60 * 25),
    ]
    store.apply([event_delta(e, CATALOG, "c:c-1") for e in events])
    store.link("v-1", "c-1", 0)


def test_unknown_customer_is_a_clear_404(api):
    response = api.get("/v1/profiles/c-404")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and "c-404" in error["message"]


def test_invalid_customer_id_is_a_422_naming_the_field(api):
    response = api.get("/v1/profiles/bad id!")
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "customer_id"


def test_profile_timeline_and_export(api, store):
    _load(store)
    profile = api.get("/v1/profiles/c-1").json()
    assert profile["customer_id"] == "c-1" and profile["anonymous_ids"] == ["v-1"]
    assert profile["journey"]["phase"] == "post_purchase"
    assert profile["value"] == {
        "orders": 1, "refunds": 0, "revenue": {"VND": 450000}, "currency": "VND",
        "average_order_value": 450000.0, "first_purchase_at": "2027-01-20T09:10:00Z",
        "last_purchase_at": "2027-01-20T09:10:00Z",
        "days_since_last_purchase": pytest.approx(2 - 10 / 1440, abs=1e-3),
        "rfm": {"recency": 5, "frequency": 1, "monetary": 2, "segment": "new"}}
    assert [b["touchpoint"] for b in profile["satisfaction"]["open_bad_experiences"]] == [
        "delivery.failed"]
    assert profile["consent"]["email"]["status"] == "opt_in"
    features = profile["features"]
    assert features["bad_experience_open"] is True and features["consent_email"] is True
    assert features["phase"] == "post_purchase" and features["orders"] == 1.0
    assert features["days_since_purchase"] == pytest.approx(2 - 10 / 1440, abs=1e-3)

    timeline = api.get("/v1/profiles/c-1/timeline", params={"limit": 2}).json()
    assert timeline["count"] == 2
    assert [i["touchpoint"] for i in timeline["items"]] == ["email.subscribe", "delivery.failed"]

    export = api.get("/v1/profiles/c-1/export").json()
    assert len(export["timeline"]) == 4 and export["timeline"][-1]["context"] == {
        "campaign": "tet"}
    stored_keys = list(export["stored"])
    assert any(k.endswith(":p") for k in stored_keys)
    assert any(k.endswith("{a:v-1}:alias") for k in stored_keys)


def test_erasure_then_a_late_event_does_not_bring_the_profile_back(api, store):
    _load(store)
    response = api.delete("/v1/profiles/c-1")
    assert response.status_code == 200
    body = response.json()
    assert body["existed"] and body["anonymous_ids"] == ["v-1"] and body["keys_deleted"] >= 2
    assert api.get("/v1/profiles/c-1").status_code == 404
    late = event_delta(event("late", "web.visit", 60 * 30), CATALOG, "c:c-1")
    assert store.apply([late]) == [Outcome.REFUSED_ERASED]
    assert api.get("/v1/profiles/c-1").status_code == 404
    assert api.delete("/v1/profiles/c-1").json()["existed"] is False


def test_health_readiness_metrics_and_openapi(api):
    assert api.get("/healthz").json()["status"] == "ok"
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.json()
    metrics = api.get("/metrics").text
    for name in ("touchpoint_profile_events_applied_total", "touchpoint_profile_consumer_lag",
                 "touchpoint_profile_batch_seconds", "touchpoint_http_request_duration_seconds"):
        assert name in metrics
    spec = api.get("/openapi.json").json()
    get_profile = spec["paths"]["/v1/profiles/{customer_id}"]["get"]
    assert "example" in get_profile["responses"]["200"]["content"]["application/json"]
    assert "delete" in spec["paths"]["/v1/profiles/{customer_id}"]


def test_app_consumes_events_and_serves_them(settings, redis_client):
    from tests.profiles.reference import produce
    from tests.profiles.test_consumer import wait_for

    settings = settings.model_copy(update={"auth_disabled": True})
    app = create_app(settings, redis_client=redis_client)
    with TestClient(app) as client:
        produce(settings, [event("e1", "web.purchase", value=90000, currency="VND"),
                           event("e1", "web.purchase", value=90000, currency="VND")])
        wait_for(lambda: client.get("/v1/profiles/c-1").status_code == 200)
        wait_for(lambda: "touchpoint_profile_duplicates_skipped_total{topic=" in
                 client.get("/metrics").text)
        assert client.get("/v1/profiles/c-1").json()["value"]["orders"] == 1
        assert client.get("/readyz").status_code == 200
    assert not app.state.runtime.threads["profiles"].is_alive()
