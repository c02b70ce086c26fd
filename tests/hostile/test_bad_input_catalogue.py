"""Hostile input to the profile, recommender and webhook endpoints: each case gets a precise
4xx naming the field (or the body), and nothing changes: no Redis key written or deleted, no
record produced, no decision logged.

Ingestion's `/v1/events` has its own catalogue (tests/ingestion/test_bad_input.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
import redis
from _pytest.mark.structures import ParameterSet
from fastapi.testclient import TestClient

from services.ingestion.app import create_app as ingestion_app
from services.profiles.app import create_app as profile_app
from services.profiles.fold import event_delta
from services.profiles.store import ProfileStore
from services.recommender.app import create_app as recommender_app
from services.streaming.publisher import InMemoryPublisher
from shared import redis_keys as keys
from shared.actions import load_actions
from shared.events import TouchpointEvent
from shared.touchpoints import load_catalog
from tests.hostile.stack import admin_key, isolated_settings, webhook_secrets

ACTION = sorted(load_actions(None))[0]
DEEP = b"[" * 5000 + b"]" * 5000
HUGE_STRING = "x" * 100_000
INJECTIONS = ["../../etc/passwd", "c-1'; DROP TABLE profiles;--", "c-1\nFLUSHALL", "c-*",
              "c-1}{c:other", "$(reboot)", "<script>alert(1)</script>", "c" * 5000]


class DecisionList:
    """Decision log sink that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list = []

    def submit(self, record) -> bool:
        self.records.append(record)
        return True

    def flush(self, timeout_s: float = 10.0) -> None:
        pass

    def close(self) -> None:
        pass


def redis_state(client: redis.Redis, namespace: str) -> dict[bytes, bytes]:
    return {key: client.dump(key) for key in client.scan_iter(match=f"{namespace}*")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server, kafka_broker):
    key_file, key = admin_key(tmp_path_factory.mktemp("catalogue-keys"))
    settings = isolated_settings(redis_server.url, kafka_broker.bootstrap_servers,
                                 api_keys_file=key_file, rate_limit_enabled=False,
                                 max_body_bytes=256 * 1024,
                                 model_registry_dir=tmp_path_factory.mktemp("models"),
                                 **webhook_secrets())
    client = redis.Redis.from_url(redis_server.url)
    # one real profile, so that "nothing changed" has something to lose
    event = TouchpointEvent(event_id="seed-1", customer_id="c-seed", touchpoint="web.visit",
                            occurred_at=datetime.now(UTC))
    ProfileStore(client, settings.redis_namespace).apply(
        [event_delta(event, load_catalog(), keys.customer_subject("c-seed"))])
    decisions, feedback, ingested = DecisionList(), InMemoryPublisher(), InMemoryPublisher()
    apps = {
        "profile": profile_app(settings, run_consumers=False),
        "recommender": recommender_app(settings, decision_log=decisions,
                                       feedback_publisher=feedback),
        "ingestion": ingestion_app(settings, publisher=ingested),
    }
    clients = {name: TestClient(app).__enter__() for name, app in apps.items()}
    yield {"settings": settings, "key": key, "redis": client, "clients": clients,
           "decisions": decisions, "feedback": feedback, "ingested": ingested}
    for test_client in clients.values():
        test_client.__exit__(None, None, None)
    client.close()


def auth(stack, **headers) -> dict:
    return {"Authorization": f"Bearer {stack['key']}", **headers}


JSON = {"content-type": "application/json"}
REC = "/v1/recommendations"
FEEDBACK = "/v1/feedback"


def feedback(**changes) -> dict:
    body = {"decision_id": "d-1", "customer_id": "c-seed", "action_id": ACTION,
            "outcome": "clicked", **changes}
    return {k: v for k, v in body.items() if v is not None}


CASES = [
    # (name, service, method, path, body: bytes | JSON | None, status, field named)
    ("rec: malformed json", "recommender", "POST", REC, b'{"customer_id": ', 400, "(body)"),
    ("rec: invalid utf-8", "recommender", "POST", REC, b'{"customer_id": "c\xff\xfe"}', 400,
     "(body)"),
    ("rec: nested 5000 deep", "recommender", "POST", REC,
     b'{"customer_id": "c-1", "context": ' + DEEP + b"}", 400, "(body)"),
    ("rec: nested object in context", "recommender", "POST", REC,
     {"customer_id": "c-1", "context": {"a": {"b": {"c": 1}}}}, 422, "context"),
    ("rec: NaN", "recommender", "POST", REC, b'{"customer_id": "c-1", "context": {"x": NaN}}',
     422, "context"),
    ("rec: Infinity k", "recommender", "POST", REC, b'{"customer_id": "c-1", "k": Infinity}',
     422, "k"),
    ("rec: negative k", "recommender", "POST", REC, {"customer_id": "c-1", "k": -1}, 422, "k"),
    ("rec: absurd k", "recommender", "POST", REC, {"customer_id": "c-1", "k": 10**18}, 422, "k"),
    ("rec: huge string", "recommender", "POST", REC,
     {"customer_id": "c-1", "context": {"note": HUGE_STRING}}, 422, "context"),
    ("rec: huge array", "recommender", "POST", REC,
     {"customer_id": "c-1", "candidates": [ACTION] * 5_000}, 422, "candidates"),
    ("rec: too many context keys", "recommender", "POST", REC,
     {"customer_id": "c-1", "context": {f"k{i}": i for i in range(500)}}, 422, "context"),
    ("rec: body over the limit", "recommender", "POST", REC,
     {"customer_id": "c-1", "context": {"note": "y" * 300_000}}, 413, "(body)"),
    ("rec: unknown field", "recommender", "POST", REC, {"customer_id": "c-1", "admin": True},
     422, "admin"),
    *[(f"rec: id {bad[:20]!r}", "recommender", "POST", REC, {"customer_id": bad}, 422,
       "customer_id") for bad in INJECTIONS],
    ("feedback: negative value", "recommender", "POST", FEEDBACK,
     feedback(outcome="converted", value=-5, currency="VND"), 422, "value"),
    ("feedback: absurd value", "recommender", "POST", FEEDBACK,
     feedback(outcome="converted", value=1e30, currency="VND"), 422, "value"),
    ("feedback: NaN value", "recommender", "POST", FEEDBACK,
     b'{"decision_id": "d-1", "customer_id": "c-seed", "action_id": "%s", "outcome": '
     b'"converted", "value": NaN, "currency": "VND"}' % ACTION.encode(), 422, "value"),
    ("feedback: unknown outcome", "recommender", "POST", FEEDBACK, feedback(outcome="loved"),
     422, "outcome"),
    ("feedback: far past", "recommender", "POST", FEEDBACK,
     feedback(occurred_at="1970-01-01T00:00:00Z"), 422, "occurred_at"),
    ("feedback: far future", "recommender", "POST", FEEDBACK,
     feedback(occurred_at="9999-01-01T00:00:00Z"), 422, "occurred_at"),
    *[(f"feedback: id {bad[:20]!r}", "recommender", "POST", FEEDBACK,
       feedback(customer_id=bad), 422, "customer_id") for bad in INJECTIONS],
    ("profile: injection id", "profile", "GET", "/v1/profiles/c-1'%3B%20DROP", None, 422,
     "customer_id"),
    ("profile: glob id", "profile", "GET", "/v1/profiles/c-*", None, 422, "customer_id"),
    ("profile: NUL id", "profile", "GET", "/v1/profiles/%00", None, 422, "customer_id"),
    ("profile: newline id", "profile", "GET", "/v1/profiles/c-1%0D%0AFLUSHALL", None, 422,
     "customer_id"),
    ("profile: huge id", "profile", "GET", "/v1/profiles/" + "c" * 5000, None, 422,
     "customer_id"),
    ("profile: negative limit", "profile", "GET", "/v1/profiles/c-seed/timeline?limit=-1",
     None, 422, "limit"),
    ("profile: absurd limit", "profile", "GET",
     "/v1/profiles/c-seed/timeline?limit=99999999999999999999", None, 422, "limit"),
    ("profile: erase by glob", "profile", "DELETE", "/v1/profiles/c-*", None, 422,
     "customer_id"),
    ("profile: erase by injection", "profile", "DELETE", "/v1/profiles/c-seed%27%20OR%201",
     None, 422, "customer_id"),
    ("profile: erase with body over the limit", "profile", "DELETE", "/v1/profiles/c-seed",
     b"z" * 300_000, 413, "(body)"),
]


def send(stack, service: str, method: str, path: str, body, headers=None):
    client = stack["clients"][service]
    if isinstance(body, bytes):
        return client.request(method, path, content=body, headers=auth(stack, **JSON,
                                                                          **(headers or {})))
    if body is None:
        return client.request(method, path, headers=auth(stack, **(headers or {})))
    return client.request(method, path, json=body, headers=auth(stack, **(headers or {})))


def snapshot(stack) -> tuple:
    return (redis_state(stack["redis"], stack["settings"].redis_namespace),
            len(stack["decisions"].records),
            {t: len(r) for t, r in stack["feedback"].topics.items()},
            {t: len(r) for t, r in stack["ingested"].topics.items()})


@pytest.mark.parametrize(("name", "service", "method", "path", "body", "status", "field"),
                         [c if isinstance(c, ParameterSet) else pytest.param(*c, id=c[0])
                          for c in CASES])
def test_hostile_input_is_refused_precisely_and_changes_nothing(
    stack, name, service, method, path, body, status, field,
):
    before = snapshot(stack)
    response = send(stack, service, method, path, body)
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    named = [f["field"] for f in error.get("fields", [])]
    assert any(n == field or n.startswith(field + ".") for n in named), (named, error)
    assert error["message"]
    assert snapshot(stack) == before


def test_chunked_body_over_the_limit_is_cut_off(stack):
    def chunks():
        for _ in range(100):
            yield b"a" * 8192

    before = snapshot(stack)
    response = stack["clients"]["recommender"].post(REC, content=chunks(),
                                                    headers=auth(stack, **JSON))
    assert response.status_code == 413, response.text
    assert response.json()["error"]["fields"][0]["field"] == "(body)"
    assert snapshot(stack) == before


def shopify_signature(body: bytes) -> str:
    secret = webhook_secrets()["webhook_shopify_secret"].encode()
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


WEBHOOK_BODIES = {
    "malformed json": b'{"id": ',
    "invalid utf-8": b'{"id": "\xff\xfe"}',
    "nested 5000 deep": DEEP,
    "NaN": b'{"id": NaN}',
    "huge array": b"[" + b"1," * 100_000 + b"1]",
    "injection ids": json.dumps({"id": "1'; DROP", "email": "../../etc/passwd"}).encode(),
}


@pytest.mark.parametrize("name", sorted(WEBHOOK_BODIES))
def test_unsigned_hostile_webhook_is_refused_and_produces_nothing(stack, name):
    before = snapshot(stack)
    response = stack["clients"]["ingestion"].post(
        "/v1/webhooks/shopify", content=WEBHOOK_BODIES[name],
        headers={**JSON, "x-shopify-hmac-sha256": shopify_signature(b"another body"),
                 "x-shopify-topic": "orders/create"})
    assert response.status_code == 401, response.text
    assert snapshot(stack) == before


@pytest.mark.parametrize("name", sorted(WEBHOOK_BODIES))
def test_signed_hostile_webhook_is_dead_lettered_with_its_reason(stack, name):
    """Authentic but unusable: 2xx (so the provider stops retrying), one dead letter with the
    reason, nothing on the touchpoint topic, nothing in Redis."""
    body = WEBHOOK_BODIES[name]
    settings = stack["settings"]
    before = snapshot(stack)
    response = stack["clients"]["ingestion"].post(
        "/v1/webhooks/shopify", content=body,
        headers={**JSON, "x-shopify-hmac-sha256": shopify_signature(body),
                 "x-shopify-topic": "orders/create", "x-shopify-event-id": f"evt-{name}"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["dead_lettered"]) == (0, 1)
    assert answer["problems"]
    topics = stack["ingested"].topics
    assert len(topics.get(settings.topic_dead_letter, [])) == \
        before[3].get(settings.topic_dead_letter, 0) + 1
    assert len(topics.get(settings.topic_touchpoints, [])) == \
        before[3].get(settings.topic_touchpoints, 0)
    assert redis_state(stack["redis"], settings.redis_namespace) == before[0]


@pytest.mark.parametrize("path", ["/v1/webhooks/..%2F..%2Fadmin", "/v1/webhooks/shopify%00",
                                  "/v1/webhooks/" + "p" * 5000, "/v1/webhooks/%3Cscript%3E"])
def test_hostile_provider_names_are_refused(stack, path):
    before = snapshot(stack)
    response = stack["clients"]["ingestion"].post(path, content=b"{}", headers=JSON)
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"]["message"]
    assert snapshot(stack) == before
