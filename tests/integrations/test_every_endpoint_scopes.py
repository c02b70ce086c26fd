"""Every HTTP endpoint of the three services either needs a scoped API key or is knowingly
public: no key -> 401, a key without the scope -> 403 naming it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import create_app as ingestion_app
from services.outbound.api import mount_subscriptions
from services.outbound.store import OutboundStore
from services.outbound.workflows import router as workflow_router
from services.profiles.app import create_app as profile_app
from services.recommender.app import create_app as recommender_app
from services.recommender.decision_log import InMemoryDecisionLog
from services.streaming.publisher import InMemoryPublisher
from shared.api_keys import FIXED_SCOPES, KeyStore

NOW = datetime(2026, 11, 20, tzinfo=UTC)
# Public on purpose: health, docs, the touchpoint and action catalogs, the model version, and
# provider webhooks (authenticated by the provider's signature).
PUBLIC = re.compile(r"^/(healthz|readyz|metrics|docs.*|redoc.*|openapi\.json|"
                    r"v1/touchpoints.*|v1/actions|v1/models/current|v1/webhooks/\{provider\}|"
                    r"dashboard.*|static.*)$")
# Served without a key today; they expose business aggregates and should need a scope.
ANALYTICS = re.compile(r"^/v1/analytics/")


@pytest.fixture(scope="module")
def apps(tmp_path_factory, redis_server):
    import redis

    folder = tmp_path_factory.mktemp("scopes")
    store = KeyStore(folder / "keys.json")
    keys = {scope: store.create(scope, [scope], NOW)[1]
            for scope in (*FIXED_SCOPES, "webhooks:unused")}
    from shared.settings import Settings

    settings = Settings(api_keys_file=store.path, redis_url=redis_server.url,
                        rate_limit_enabled=False, model_registry_dir=folder / "models")
    recommender = recommender_app(settings, decision_log=InMemoryDecisionLog(),
                                  feedback_publisher=InMemoryPublisher())
    recommender.include_router(workflow_router)
    mount_subscriptions(recommender, OutboundStore(redis.Redis.from_url(redis_server.url), "s"))
    return {"ingestion": ingestion_app(settings, InMemoryPublisher()),
            "profile": profile_app(settings, run_consumers=False),
            "recommender": recommender}, keys


def operations(apps) -> list[tuple[str, str, str]]:
    """(service, method, path) of every documented operation."""
    found = []
    for name, app in apps[0].items():
        for path, methods in TestClient(app).get("/openapi.json").json()["paths"].items():
            found += [(name, method, path) for method in methods]
    return found


def fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "sub_0123456789abcdef"
                  if "subscription" in m.group(0) else "c-1", path)


def test_every_operation_needs_its_scope_or_is_knowingly_public(apps):
    services, keys = apps
    checked = set()
    for name, method, path in operations(apps):
        if PUBLIC.match(path) or ANALYTICS.match(path):
            continue
        client = TestClient(services[name])
        url = fill(path)
        anonymous = client.request(method, url, json={})
        assert anonymous.status_code == 401, (name, method, path)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        denied = client.request(method, url, json={},
                                headers={"X-API-Key": keys["webhooks:unused"]})
        assert denied.status_code == 403, (name, method, path)
        scope = re.search(r"lacks the scope '([^']+)'", denied.json()["error"]["message"])[1]
        granted = client.request(method, url, json={}, headers={"X-API-Key": keys[scope]})
        assert granted.status_code not in (401, 403), (name, method, path, scope)
        checked.add((name, scope))
    assert {scope for _, scope in checked} == {"events:write", "recommendations:read",
                                               "profiles:read", "profiles:erase", "admin"}


def test_analytics_endpoints_need_a_key(apps):
    services, _ = apps
    open_ones = [path for name, method, path in operations(apps) if ANALYTICS.match(path)
                 and TestClient(services[name]).request(method, fill(path)).status_code != 401]
    assert open_ones == []
