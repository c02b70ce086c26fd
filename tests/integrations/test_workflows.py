"""Workflow steps and audiences call the real recommender in-process with the caller's key."""

from __future__ import annotations

from datetime import UTC, datetime

import msgpack
import orjson
import pytest
from fastapi.testclient import TestClient

from services.outbound.workflows import contact_request, flatten
from services.outbound.workflows import router as workflow_router
from services.recommender.app import create_app
from services.recommender.decision_log import InMemoryDecisionLog
from services.streaming.publisher import InMemoryPublisher
from shared import redis_keys
from shared.api_keys import KeyStore
from shared.errors import StoreUnavailableError

NOW = datetime(2026, 11, 20, tzinfo=UTC)

# HubSpot workflow "Send a webhook" with all contact properties (legacy contact format,
# developers.hubspot.com/docs/api/workflows "webhook action" payload)
HUBSPOT_CONTACT = {"vid": 1246965, "canonical-vid": 1246965, "portal-id": 33,
                   "properties": {"email": {"value": "Lan@Example.vn"},
                                  "firstname": {"value": "Lan"},
                                  "lifecyclestage": {"value": "customer"},
                                  "hs_analytics_num_visits": {"value": "12"}}}

CONTACTS = [
    ("hubspot nested", HUBSPOT_CONTACT, "lan@example.vn",
     {"first_name": "Lan", "lifecyclestage": "customer"}),
    ("flat", {"email": "x@y.vn", "locale": "vi", "ignored": "x"}, "x@y.vn", {"locale": "vi"}),
    ("explicit id wins", {"customer_id": "c-9", "email": "x@y.vn"}, "c-9", {}),
    ("phone only", {"phone": "0909 123 456"}, "+84909123456", {}),
]


@pytest.mark.parametrize(("name", "payload", "customer", "context"), CONTACTS,
                         ids=[c[0] for c in CONTACTS])
def test_contact_payloads_become_recommendation_requests(name, payload, customer, context):
    body, problem = contact_request(payload, ["firstname", "first_name", "locale",
                                              "lifecyclestage"], 2)
    assert problem == ""
    assert body == {"customer_id": customer, "context": context, "k": 2}


def test_no_identity_is_a_clear_problem():
    assert contact_request({"name": "Lan"}, [], 1) == (
        None, "no customer_id, email or phone in the body")


def test_flatten_puts_the_first_action_on_top_and_none_for_holdout():
    assert flatten({"decision_id": "d", "holdout": True, "actions": []})["action_id"] == "none"
    flat = flatten({"decision_id": "d", "actions": [{"action_id": "a", "channel": "zalo"}]})
    assert (flat["action_id"], flat["channel"]) == ("a", "zalo")


@pytest.fixture
def served(settings, tmp_path):
    keys = KeyStore(tmp_path / "keys.json")
    reader = keys.create("hubspot-workflow", ["recommendations:read"], NOW)[1]
    writer = keys.create("shop", ["events:write"], NOW)[1]
    service = settings.model_copy(update={
        "auth_disabled": False, "rate_limit_enabled": False, "recommender_holdout_share": 0.0,
        "model_registry_dir": tmp_path / "models"})
    log = InMemoryDecisionLog()
    app = create_app(service, decision_log=log, feedback_publisher=InMemoryPublisher(),
                     key_store=keys, seed=3)
    app.include_router(workflow_router)  # how the recommender mounts it
    with TestClient(app) as client:
        yield client, reader, writer, log


def test_hubspot_workflow_step_gets_flat_fields(served):
    client, reader, _, log = served
    reply = client.post("/v1/workflows/recommendations?k=2", json=HUBSPOT_CONTACT,
                        headers={"Authorization": f"Bearer {reader}"})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["customer_id"] == "lan@example.vn"
    assert answer["action_id"] == (answer["actions"][0]["action_id"] if answer["actions"]
                                   else "none")
    # Logged like any decision, so webhook subscribers receive it too.
    assert [r.decision_id for r in log.records] == [answer["decision_id"]]


def test_workflow_scopes_are_enforced_end_to_end(served):
    client, _, writer, _ = served
    assert client.post("/v1/workflows/recommendations", json=HUBSPOT_CONTACT).status_code == 401
    forbidden = client.post("/v1/workflows/recommendations", json=HUBSPOT_CONTACT,
                            headers={"X-API-Key": writer})
    assert forbidden.status_code == 403
    assert client.post("/v1/audiences/recommendations", json={"customer_ids": ["c-1"]},
                       headers={"X-API-Key": writer}).status_code == 403


def test_workflow_without_identity_is_422_naming_the_field(served):
    client, reader, _, _ = served
    reply = client.post("/v1/workflows/recommendations", json={"name": "Lan"},
                        headers={"X-API-Key": reader})
    assert reply.status_code == 422
    assert reply.json()["error"]["fields"][0]["field"] == "customer_id"


def test_audience_streams_one_line_per_customer_then_a_summary(served):
    client, reader, _, log = served
    ids = ["c-1", "c-2", "lan@example.vn", "bad id with spaces"]
    reply = client.post("/v1/audiences/recommendations", json={"customer_ids": ids},
                        headers={"X-API-Key": reader})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in reply.text.splitlines()]
    assert [line.get("progress") for line in lines[:-1]] == ["1/4", "2/4", "3/4", "4/4"]
    assert [line.get("customer_id") for line in lines[:3]] == ids[:3]
    assert lines[3]["status"] == 422 and "customer_id" in lines[3]["error"]
    assert lines[-1] == {"done": 4, "errors": 1}
    assert [r.customer_id for r in log.records] == ids[:3]


def _seed(redis_client, namespace: str, count: int) -> set[str]:
    """`count` customers; the even ones bought recently and opted in to e-mail (the segment
    below), the odd ones never bought. Plus an anonymous visitor, never in an audience."""
    seen = int(datetime.now(UTC).timestamp() * 1000) - 86_400_000
    with redis_client.pipeline(transaction=False) as pipe:
        for i in range(count):
            buyer = i % 2 == 0
            state = {"n": {"ev": 3, "orders": 1 if buyer else 0},
                     "mx": {"ls": seen, **({"lp": seen} if buyer else {})},
                     "lw": {"cs:email": [seen, "t", "opt_in" if buyer else "opt_out"]}, "sn": b""}
            pipe.set(redis_keys.profile_key(namespace, redis_keys.customer_subject(f"s-{i}")),
                     msgpack.packb(state))
        pipe.set(redis_keys.profile_key(namespace, redis_keys.anonymous_subject("anon-1")),
                 msgpack.packb({"n": {"ev": 1}, "mx": {"ls": seen}, "sn": b""}))
        pipe.execute()
    return {f"s-{i}" for i in range(0, count, 2)}


SEGMENT = {"phase": ["post_purchase"], "purchased_within_days": 7, "opted_in": ["email"]}


def _lines(reply) -> list[dict]:
    assert reply.status_code == 200, reply.text
    return [orjson.loads(line) for line in reply.text.splitlines()]


def test_segment_audience_decides_for_every_customer_in_the_segment(served, redis_client,
                                                                     settings):
    client, reader, _, log = served
    expected = _seed(redis_client, settings.redis_namespace, 40)
    lines = _lines(client.post("/v1/audiences/recommendations",
                               json={"segment": SEGMENT, "context": {"campaign": "q4"}},
                               headers={"X-API-Key": reader}))
    decisions, summary = lines[:-1], lines[-1]
    assert {line["customer_id"] for line in decisions} == expected
    assert len(decisions) == len(expected)
    assert all(line["decision_id"] and "status" not in line for line in decisions)
    progress = [tuple(int(word) for word in line["progress"].split()[::2])
                for line in decisions]  # "3 matched, 80 scanned" -> (3, 80)
    assert [matched for matched, _ in progress] == list(range(1, len(expected) + 1))
    scanned = [count for _, count in progress]
    assert scanned == sorted(scanned) and scanned[-1] <= 40
    assert summary == {"done": len(expected), "errors": 0, "scanned": 40, "next_cursor": None}
    assert sorted(r.customer_id for r in log.records) == sorted(expected)


def test_segment_audience_stops_at_the_limit_and_resumes_from_the_cursor(served, redis_client,
                                                                         settings):
    client, reader, _, _ = served
    expected = _seed(redis_client, settings.redis_namespace, 900)
    decided: set[str] = set()
    cursor, pages = 0, 0
    while True:
        lines = _lines(client.post("/v1/audiences/recommendations",
                                   json={"segment": SEGMENT, "limit": 50, "cursor": cursor},
                                   headers={"X-API-Key": reader}))
        summary = lines[-1]
        decided |= {line["customer_id"] for line in lines[:-1]}
        pages += 1
        if summary["next_cursor"] is None:
            break
        assert summary["done"] >= 50, "a scan stops early only at the limit"
        cursor = summary["next_cursor"]
    assert pages > 1
    assert decided == expected


@pytest.mark.parametrize(("body", "field"), [
    ({"context": {}}, "customer_ids"),
    ({"customer_ids": ["c-1"], "segment": SEGMENT}, "segment"),
    ({"segment": {"phase": ["loyal"]}}, "segment.phase.0"),
    ({"segment": SEGMENT, "limit": 0}, "limit"),
])
def test_audience_without_exactly_one_target_is_422_naming_the_field(served, body, field):
    client, reader, _, log = served
    reply = client.post("/v1/audiences/recommendations", json=body,
                        headers={"X-API-Key": reader})
    assert reply.status_code == 422
    assert field in [item["field"] for item in reply.json()["error"]["fields"]]
    assert log.records == []


def test_segment_audience_reports_a_redis_failure_and_where_to_resume(served, redis_client,
                                                                      settings):
    client, reader, _, _ = served
    _seed(redis_client, settings.redis_namespace, 10)
    profiles = client.app.state.runtime.reader

    async def unavailable(cursor: int, count: int):
        raise StoreUnavailableError("Redis unavailable: TimeoutError")

    profiles.scan_customers = unavailable
    try:
        lines = _lines(client.post("/v1/audiences/recommendations", json={"segment": SEGMENT},
                                   headers={"X-API-Key": reader}))
    finally:
        del profiles.scan_customers
    assert lines[0] == {"status": 503, "error": "Redis unavailable: TimeoutError"}
    assert lines[-1] == {"done": 0, "errors": 0, "scanned": 0, "next_cursor": 0}
