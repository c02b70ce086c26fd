"""POST /v1/recommendations and /v1/feedback against real Redis and the real broker."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.recommender.app import create_app
from shared.decisions import DecisionRecord
from shared.events import TouchpointEvent
from tests.kafka_reading import read_topic
from tests.recommender_service.conftest import (
    ALL_OPT_IN,
    CATALOG,
    profile_state,
    zone_at_local_hour,
)


def midday_zone() -> str:
    """A time zone where it is about midday now, so quiet hours never interfere."""
    return zone_at_local_hour(12)


@pytest.fixture
def client(service_settings):
    with TestClient(create_app(service_settings, seed=7)) as test_client:
        yield test_client


def test_unknown_customer_gets_an_answer_and_the_decision_reaches_kafka(client, service_settings):
    response = client.post("/v1/recommendations", json={
        "customer_id": "never-seen", "k": 2, "context": {"first_name": "Lan", "page": "home"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["known_customer"] is False
    assert body["policy"] == "cold_start" and body["model_version"] == "prior"
    assert body["actions"], "an unknown customer still gets an answer"
    for action in body["actions"]:
        # Nothing is known about consent, so only actions that need none are proposed.
        assert CATALOG[action["action_id"]].consent is None
        assert 0 < action["propensity"] <= 1
    assert body["rejected"]["flash_sale_email"].startswith("consent:")

    client.app.state.runtime.decision_log.flush()
    records = read_topic(service_settings.kafka_bootstrap_servers,
                         service_settings.topic_decisions, expected=1)
    assert len(records) == 1
    assert records[0].key == b"never-seen"
    logged = DecisionRecord.model_validate_json(records[0].value)
    assert logged.decision_id == body["decision_id"]
    assert [a.action_id for a in logged.actions] == [a["action_id"] for a in body["actions"]]
    assert [a.propensity for a in logged.actions] == [a["propensity"] for a in body["actions"]]
    assert set(logged.candidates) >= {a["action_id"] for a in body["actions"]}
    assert logged.features["known"] is False and logged.features["phase"] == "pre_purchase"
    assert logged.features["page"] == "home" and logged.context == {"page": "home"}
    # Message placeholders fill templates; they are neither features nor logged.
    assert "first_name" not in logged.features


def test_messages_are_rendered_in_the_context_language(client, put_profile):
    put_profile("c-lang", profile_state(consent=ALL_OPT_IN))
    context = {"first_name": "Lan", "timezone": midday_zone()}
    english = client.post("/v1/recommendations", json={
        "customer_id": "c-lang", "context": {**context, "locale": "en"},
        "candidates": ["flash_sale_zalo"]}).json()
    vietnamese = client.post("/v1/recommendations", json={
        "customer_id": "c-lang", "context": context, "candidates": ["flash_sale_zalo"]}).json()
    name = {"first_name": "Lan"}
    assert english["actions"][0]["message"] == CATALOG.render("flash_sale_zalo", "en", name)
    assert vietnamese["actions"][0]["message"] == CATALOG.render("flash_sale_zalo", "vi", name)
    assert "Lan" in english["actions"][0]["message"]
    assert english["known_customer"] is True


def test_candidates_restrict_the_choice(client, put_profile):
    put_profile("c-cand", profile_state(consent=ALL_OPT_IN))
    for _ in range(20):
        body = client.post("/v1/recommendations", json={
            "customer_id": "c-cand", "context": {"timezone": midday_zone()},
            "candidates": ["flash_sale_email", {"id": "flash_sale_zalo",
                                                "features": {"incentive": 0.3}}],
            "k": 2}).json()
        assert {a["action_id"] for a in body["actions"]} == {"flash_sale_email", "flash_sale_zalo"}
        assert [a["rank"] for a in body["actions"]] == [1, 2]


@pytest.mark.parametrize(("body", "field"), [
    ({"customer_id": "c-1", "k": 0}, "k"),
    ({"customer_id": "c-1", "k": 11}, "k"),
    ({"k": 1}, "customer_id"),
    ({"customer_id": "bad id with spaces"}, "customer_id"),
    ({"customer_id": "c-1", "candidates": ["no_such_action"]}, "candidates.0"),
    ({"customer_id": "c-1", "candidates": ["no_action", "no_action"]}, "candidates.1"),
    ({"customer_id": "c-1", "candidates": []}, "candidates"),
    ({"customer_id": "c-1", "context": {"nested": {"a": 1}}}, "context.nested"),
    ({"customer_id": "c-1", "surprise": 1}, "surprise"),
])
def test_bad_input_is_refused_naming_the_field(client, body, field):
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 422
    fields = [f["field"] for f in response.json()["error"]["fields"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


def test_feedback_becomes_a_touchpoint_event_once(client, service_settings):
    decision = client.post("/v1/recommendations", json={"customer_id": "c-fb"}).json()
    action_id = decision["actions"][0]["action_id"]
    body = {"decision_id": decision["decision_id"], "customer_id": "c-fb",
            "action_id": action_id, "outcome": "converted", "value": 350000, "currency": "VND"}
    first = client.post("/v1/feedback", json=body)
    again = client.post("/v1/feedback", json=body)
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["event_id"] == again.json()["event_id"]
    assert first.json()["reward"] == 1.0

    records = read_topic(service_settings.kafka_bootstrap_servers,
                         service_settings.topic_touchpoints, expected=2)
    events = [TouchpointEvent.model_validate_json(r.value) for r in records]
    assert {e.event_id for e in events} == {first.json()["event_id"]}
    event = events[0]
    assert event.context.decision_id == decision["decision_id"]
    assert event.context.action_id == action_id
    assert event.touchpoint == "web.purchase" and event.value == 350000
    assert event.properties["outcome"] == "converted" and event.source == "recommender"


@pytest.mark.parametrize(("body", "field"), [
    ({"outcome": "clicked", "action_id": "nope"}, "action_id"),
    ({"outcome": "liked"}, "outcome"),
    ({"outcome": "converted", "value": 10}, "currency"),
    ({"outcome": "unsubscribed", "action_id": "live_chat_invite"}, "touchpoint"),
    ({"outcome": "clicked", "touchpoint": "no.such"}, "touchpoint"),
])
def test_bad_feedback_is_refused_naming_the_field(client, body, field):
    base = {"decision_id": "d-1", "customer_id": "c-1", "action_id": "flash_sale_email"}
    response = client.post("/v1/feedback", json={**base, **body})
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_openapi_documents_both_endpoints_with_examples(client):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/recommendations", "/v1/feedback"):
        assert path in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert schemas["RecommendationRequest"]["examples"]
    assert schemas["RecommendationResponse"]["examples"]
    assert schemas["FeedbackRequest"]["examples"]


def test_health_readiness_and_metrics(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "model": "ok"}
    client.post("/v1/recommendations", json={"customer_id": "c-metrics"})
    metrics = client.get("/metrics").text
    assert 'touchpoint_recommender_decisions_total{' in metrics
    assert 'model_version="prior",policy="cold_start"' in metrics
    assert "touchpoint_recommender_decision_seconds_count 1.0" in metrics
    assert 'touchpoint_recommender_model_info{model_version="prior"} 1.0' in metrics
