"""`/v1/subscriptions` as mounted on a service: admin scope, secret shown once, 404s, 422s."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.outbound.api import mount_subscriptions
from services.outbound.store import OutboundStore
from services.web.auth import install_auth
from services.web.errors import install_error_handlers
from shared.api_keys import KeyStore
from shared.settings import Settings

NOW = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def setup(tmp_path, redis_client, test_id):
    keys = KeyStore(tmp_path / "keys.json")
    admin = keys.create("ops", ["admin"], NOW)[1]
    reader = keys.create("crm", ["recommendations:read"], NOW)[1]
    app = FastAPI()
    install_error_handlers(app)
    install_auth(app, Settings(), keys)
    mount_subscriptions(app, OutboundStore(redis_client, f"t{test_id}"))
    return TestClient(app), {"X-API-Key": admin}, {"X-API-Key": reader}


def test_scopes_on_every_route(setup):
    client, _, reader = setup
    routes = [("post", "/v1/subscriptions"), ("get", "/v1/subscriptions"),
              ("get", "/v1/subscriptions/sub_0123456789abcdef"),
              ("delete", "/v1/subscriptions/sub_0123456789abcdef"),
              ("get", "/v1/subscriptions/sub_0123456789abcdef/deliveries")]
    for method, path in routes:
        assert getattr(client, method)(path).status_code == 401, path
        reply = getattr(client, method)(path, headers=reader)
        assert reply.status_code == 403, path
        assert "'admin'" in reply.json()["error"]["message"]


def test_create_list_get_delete(setup):
    client, admin, _ = setup
    created = client.post("/v1/subscriptions", headers=admin, json={
        "url": "https://crm.example.com/hooks/touchpoint", "description": "CRM tasks"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["decision.created"]
    listed = client.get("/v1/subscriptions", headers=admin).json()
    assert [s["id"] for s in listed] == [body["id"]] and "secret" not in listed[0]
    assert client.get(f"/v1/subscriptions/{body['id']}", headers=admin).json()["url"] == \
        "https://crm.example.com/hooks/touchpoint"
    assert client.get(f"/v1/subscriptions/{body['id']}/deliveries", headers=admin).json() == []
    assert client.delete(f"/v1/subscriptions/{body['id']}", headers=admin).status_code == 204
    assert client.get(f"/v1/subscriptions/{body['id']}", headers=admin).status_code == 404


BAD = [
    ({"url": "ftp://example.com"}, "url"),
    ({"url": "https://example.com", "events": ["order.paid"]}, "events"),
    ({"url": "https://example.com", "secret": "hunter2"}, "secret"),
    ({"url": "https://example.com", "extra": 1}, "extra"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_requests_name_the_field(setup, body, field):
    client, admin, _ = setup
    reply = client.post("/v1/subscriptions", headers=admin, json=body)
    assert reply.status_code == 422
    assert reply.json()["error"]["fields"][0]["field"] == field


def test_a_given_secret_is_kept(setup):
    client, admin, _ = setup
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    reply = client.post("/v1/subscriptions", headers=admin,
                        json={"url": "http://127.0.0.1:8080/hook", "secret": secret})
    assert reply.json()["secret"] == secret
