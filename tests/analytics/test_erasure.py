"""Erasing a person also deletes their per-customer analytics state."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.profiles.analytics import keys
from services.profiles.app import create_app


def test_delete_profile_removes_per_customer_analytics_keys(settings, redis_client):
    ns = settings.redis_namespace
    for subject in ("c-erase", "other"):
        for key in keys.customer_state_keys(ns, subject):
            redis_client.set(key, "x")
        redis_client.zadd(keys.open_journeys_key(ns), {subject: 1})
    app = create_app(settings, redis_client=redis_client, run_consumers=False)
    with TestClient(app) as client:
        assert client.delete("/v1/profiles/c-erase").status_code == 200
    assert not any(redis_client.exists(k) for k in keys.customer_state_keys(ns, "c-erase"))
    assert redis_client.zscore(keys.open_journeys_key(ns), "c-erase") is None
    assert all(redis_client.exists(k) for k in keys.customer_state_keys(ns, "other"))
    assert redis_client.zscore(keys.open_journeys_key(ns), "other") == 1
