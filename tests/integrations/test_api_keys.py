"""API keys: hashed storage, scopes, reload without restart, and the 401/403 answers of every
protected endpoint of the ingestion service."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import create_app
from services.streaming.publisher import InMemoryPublisher
from shared.api_keys import (
    ALL_SCOPES,
    KeyStore,
    ensure_dev_key,
    grants,
    validate_scopes,
)
from shared.errors import AuthenticationError, PermissionDeniedError
from shared.settings import Settings

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
EVENT = {"customer_id": "c-1", "occurred_at": "2026-11-20T09:30:00+07:00",
         "touchpoint": "web.visit"}


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys.json", pepper=b"pepper")


def test_keys_are_stored_hashed_and_verify(store):
    key, full = store.create("crm", ["events:write"], NOW)
    assert full.startswith(f"tp_{key.id}_")
    text = store.path.read_text()
    assert full.split("_", 2)[2] not in text and full not in text
    assert store.authenticate(full).id == key.id
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


@pytest.mark.parametrize("presented", [None, "", "Bearer x", "tp_123_abc",
                                       "tp_aaaaaaaaaaaa_" + "A" * 43])
def test_missing_malformed_and_unknown_keys_are_refused(store, presented):
    store.create("crm", ["events:write"], NOW)
    with pytest.raises(AuthenticationError):
        store.authenticate(presented)


def test_a_wrong_secret_or_pepper_is_refused(store, tmp_path):
    _, full = store.create("crm", ["events:write"], NOW)
    with pytest.raises(AuthenticationError, match="invalid"):
        store.authenticate(full[:-1] + ("A" if full[-1] != "A" else "B"))
    with pytest.raises(AuthenticationError, match="invalid"):
        KeyStore(store.path, pepper=b"other").authenticate(full)


def test_scope_checks_name_the_missing_scope(store):
    _, full = store.create("crm", ["events:write"], NOW)
    assert store.authorize(full, "events:write")
    with pytest.raises(PermissionDeniedError, match="'profiles:read'"):
        store.authorize(full, "profiles:read")


GRANTS = [
    (("admin",), "profiles:erase", True),
    (("events:write",), "events:write", True),
    (("events:write",), "recommendations:read", False),
    (("webhooks:*",), "webhooks:mautic", True),
    (("webhooks:mautic",), "webhooks:mautic", True),
    (("webhooks:mautic",), "webhooks:activecampaign", False),
    (("profiles:read",), "profiles:erase", False),
]


@pytest.mark.parametrize(("held", "wanted", "allowed"), GRANTS)
def test_scope_grants(held, wanted, allowed):
    assert grants(held, wanted) is allowed


def test_unknown_scopes_are_refused():
    with pytest.raises(ValueError, match="unknown scope"):
        validate_scopes(["events:read"])
    with pytest.raises(ValueError):
        validate_scopes([])


def test_changes_to_the_file_are_seen_without_restart(store):
    _, first = store.create("one", ["events:write"], NOW)
    assert store.authenticate(first)
    other_process = KeyStore(store.path, pepper=b"pepper")
    key, second = other_process.create("two", ["profiles:read"], NOW)
    assert store.authenticate(second).name == "two"  # the running store re-read the file
    other_process.set_disabled(key.id)
    with pytest.raises(AuthenticationError, match="disabled"):
        store.authenticate(second)


def test_an_invalid_file_fails_loudly(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"id": "x"}]}))
    with pytest.raises(Exception, match="invalid"):
        KeyStore(path).keys()


def test_dev_key_has_every_scope_and_is_created_once(tmp_path):
    key = ensure_dev_key(tmp_path)
    assert (tmp_path / "dev-api-key").read_text().strip() == key
    assert stat.S_IMODE(os.stat(tmp_path / "dev-api-key").st_mode) == 0o600
    assert ensure_dev_key(tmp_path) == key
    stored = KeyStore(tmp_path / "api-keys.json").authenticate(key)
    assert set(stored.scopes) == set(ALL_SCOPES)
    for scope in ("events:write", "profiles:erase", "webhooks:shopify", "admin"):
        assert stored.allows(scope)


# --- HTTP: every ingestion endpoint -----------------------------------------------------

@pytest.fixture
def keys(store) -> dict[str, str]:
    return {name: store.create(name, scopes, NOW)[1] for name, scopes in [
        ("writer", ["events:write"]), ("reader", ["profiles:read"]), ("admin", ["admin"]),
        ("mautic", ["webhooks:mautic"])]}


@pytest.fixture
def client(store, keys, tmp_path) -> TestClient:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"version": 1, "providers": {"workflow": {
        "auth": {"type": "api-key"}, "records": [{
            "touchpoint": "crm.contact_updated", "customer_id": [{"path": "/email",
                                                                  "as": "email"}],
            "occurred_at": {"path": "/at", "format": "unix_ms"}}]}}}))
    settings = Settings(webhook_mapping_file=mapping)
    return TestClient(create_app(settings, InMemoryPublisher(), key_store=store))


def test_events_without_a_key_get_401_with_a_clear_message(client):
    reply = client.post("/v1/events", json=EVENT)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in reply.json()["error"]["message"]


def test_events_with_a_wrong_key_get_401(client, keys):
    reply = client.post("/v1/events", json=EVENT,
                        headers={"Authorization": "Bearer " + keys["writer"][:-2] + "xx"})
    assert reply.status_code == 401 and "invalid API key" in reply.json()["error"]["message"]


def test_events_with_a_key_lacking_the_scope_get_403_naming_it(client, keys):
    reply = client.post("/v1/events", json=EVENT, headers={"X-API-Key": keys["reader"]})
    assert reply.status_code == 403
    assert "'events:write'" in reply.json()["error"]["message"]


@pytest.mark.parametrize("name", ["writer", "admin"])
@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_events_with_the_scope_are_accepted(client, keys, name, style):
    headers = {"Authorization": f"Bearer {keys[name]}"} if style == "bearer" \
        else {"X-API-Key": keys[name]}
    assert client.post("/v1/events", json=EVENT, headers=headers).status_code == 202


def test_catalog_and_health_stay_public(client):
    assert client.get("/v1/touchpoints").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_provider_webhooks_do_not_need_our_key(client):
    # Signature-authenticated: an unconfigured provider answers 503, never 401-for-key.
    assert client.post("/v1/webhooks/shopify", content=b"{}").status_code == 503


@pytest.mark.parametrize(("name", "status"), [(None, 401), ("writer", 403), ("mautic", 403),
                                              ("admin", 200)])
def test_generic_api_key_provider_needs_its_webhooks_scope(client, keys, name, status):
    headers = {"X-API-Key": keys[name]} if name else {}
    reply = client.post("/v1/webhooks/workflow", headers=headers,
                        content=b'{"email": "Lan@Example.vn", "at": 1795000000000}')
    assert reply.status_code == status, reply.text
    if status == 403:
        assert "webhooks:workflow" in reply.json()["error"]["message"]


def test_no_key_store_and_auth_not_disabled_fails_closed():
    client = TestClient(create_app(Settings(), InMemoryPublisher()))
    reply = client.post("/v1/events", json=EVENT)
    assert reply.status_code == 401
    assert "API_KEYS_FILE" in reply.json()["error"]["message"]


def test_api_keys_file_setting_builds_the_store(store, keys):
    settings = Settings(api_keys_file=store.path, api_key_pepper="pepper")
    client = TestClient(create_app(settings, InMemoryPublisher()))
    assert client.post("/v1/events", json=EVENT,
                       headers={"X-API-Key": keys["writer"]}).status_code == 202


def test_openapi_declares_both_key_schemes(client):
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)


def _create_many(path: str, name: str) -> None:
    store = KeyStore(Path(path))
    for index in range(15):
        store.create(f"{name}-{index}", ["events:write"], NOW)


def test_concurrent_writers_lose_no_key(tmp_path):
    import multiprocessing

    path = tmp_path / "keys.json"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_create_many, args=(str(path), name))
               for name in ("a", "b", "c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert len(KeyStore(path).keys()) == 45
