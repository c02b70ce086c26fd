"""Every kind of bad input gets a precise 4xx naming the field, and nothing is produced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import create_app
from services.streaming.publisher import InMemoryPublisher
from shared.settings import Settings

NOW = datetime.now(UTC)
GOOD = {"customer_id": "c-1", "occurred_at": NOW.isoformat(), "touchpoint": "web.visit"}


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


@pytest.fixture
def client(publisher: InMemoryPublisher) -> TestClient:
    settings = Settings(max_body_bytes=200 * 1024, max_batch_events=1000, auth_disabled=True)
    return TestClient(create_app(settings, publisher))


def with_(**changes):
    event = {**GOOD, **changes}
    return {k: v for k, v in event.items() if v is not None}


CASES = [
    # (name, body bytes or JSON, headers, status, field named)
    ("not json", b"{'customer_id': 1", None, 400, "(body)"),
    ("invalid utf-8", b'{"customer_id": "\xff\xfe"}', None, 400, "(body)"),
    ("NaN literal", b'{"customer_id": "c", "value": NaN}', None, 400, "(body)"),
    ("wrong content type", b"customer_id=c-1", {"content-type": "text/plain"}, 415,
     "content-type"),
    ("json array", [GOOD], None, 422, "(body)"),
    ("missing ids", with_(customer_id=None), None, 422, "customer_id"),
    ("missing occurred_at", with_(occurred_at=None), None, 422, "occurred_at"),
    ("naive timestamp", with_(occurred_at="2026-01-01T10:00:00"), None, 422, "occurred_at"),
    ("far future", with_(occurred_at=(NOW + timedelta(days=1)).isoformat()), None, 422,
     "occurred_at"),
    ("far past", with_(occurred_at="1970-01-01T00:00:00Z"), None, 422, "occurred_at"),
    ("unknown touchpoint", with_(touchpoint="web.vist"), None, 422, "touchpoint"),
    ("rating wrong type", with_(rating="five"), None, 422, "rating"),
    ("rating out of range", with_(rating=9), None, 422, "rating"),
    ("nps negative", with_(nps=-1), None, 422, "nps"),
    ("negative value", with_(value=-5, currency="VND"), None, 422, "value"),
    ("absurd value", with_(value=1e30, currency="VND"), None, 422, "value"),
    ("value without currency", with_(value=100), None, 422, "currency"),
    ("bad currency", with_(value=100, currency="dong"), None, 422, "currency"),
    ("path traversal id", with_(customer_id="../../etc/passwd"), None, 422, "customer_id"),
    ("injection id", with_(customer_id="c-1'; DROP TABLE x;--"), None, 422, "customer_id"),
    ("huge id", with_(customer_id="c" * 5000), None, 422, "customer_id"),
    ("unknown field", with_(colour="red"), None, 422, "colour"),
    ("unknown context field", with_(context={"campaign": "x", "mood": "?"}), None, 422,
     "context.mood"),
    ("nested property", with_(properties={"a": {"b": 1}}), None, 422, "properties.a"),
    ("too many properties", with_(properties={f"k{i}": i for i in range(51)}), None, 422,
     "properties"),
    ("unknown channel", with_(channel="carrier-pigeon"), None, 422, "channel"),
    ("bad sentiment", with_(sentiment="meh"), None, 422, "sentiment"),
    ("bad consent status", with_(consent={"email": "maybe"}), None, 422, "consent.email"),
    ("events not a list", {"events": {"a": 1}}, None, 422, "events"),
    ("empty batch", {"events": []}, None, 422, "events"),
    ("batch too large", {"events": [GOOD] * 1001}, None, 413, "events"),
]


@pytest.mark.parametrize(("name", "body", "headers", "status", "field"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input_is_refused_precisely(client, publisher, name, body, headers, status, field):
    if isinstance(body, bytes):
        response = client.post("/v1/events", content=body,
                               headers=headers or {"content-type": "application/json"})
    else:
        response = client.post("/v1/events", json=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    named = [f["field"] for f in error.get("fields", [])]
    assert any(n == field or n.endswith("." + field) or n.startswith(field) for n in named), named
    assert error["message"]
    assert publisher.topics == {}


def test_oversize_body_is_refused_before_parsing(client, publisher):
    big = b'{"customer_id": "' + b"x" * (250 * 1024) + b'"}'
    response = client.post("/v1/events", content=big,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]
    assert publisher.topics == {}


def test_deeply_nested_json_is_refused(client, publisher):
    body = b'{"properties": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = client.post("/v1/events", content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)
    assert publisher.topics == {}


def test_batch_accepts_valid_and_reports_invalid_by_index(client, publisher):
    batch = {"events": [GOOD, with_(touchpoint="nope.nope"), with_(customer_id="c-2")]}
    response = client.post("/v1/events", json=batch)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["errors"][0]["index"] == 1
    assert body["errors"][0]["fields"][0]["field"] == "events[1].touchpoint"
    assert len(next(iter(publisher.topics.values()))) == 2


def test_broker_outage_answers_503_with_retry_after(client, publisher):
    publisher.available = False
    response = client.post("/v1/events", json=GOOD)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert publisher.topics == {}


def test_server_sets_received_at_and_source(client, publisher):
    response = client.post("/v1/events", json=with_(source="webhook:evil",
                                                     received_at="2001-01-01T00:00:00Z"))
    assert response.status_code == 202, response.text
    record = next(iter(publisher.topics.values()))[0]
    assert b'"source":"api"' in record.value
    assert b"2001-01-01" not in record.value


def test_future_skew_limit_is_five_minutes(client, publisher):
    now = datetime.now(UTC)
    late = client.post("/v1/events", json=with_(occurred_at=(now + timedelta(minutes=6))
                                                 .isoformat()))
    assert late.status_code == 422
    assert late.json()["error"]["fields"][0]["field"] == "occurred_at"
    assert publisher.topics == {}
    slightly_ahead = client.post("/v1/events", json=with_(occurred_at=(now + timedelta(minutes=4))
                                                           .isoformat()))
    assert slightly_ahead.status_code == 202
