"""With OUTBOUND_ENABLED the recommender serves subscriptions and runs the delivery threads."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.recommender.app import create_app


def test_outbound_routes_and_threads_run_inside_the_recommender(settings, tmp_path):
    settings = settings.model_copy(update={"outbound_enabled": True,
                                           "model_registry_dir": tmp_path / "models"})
    app = create_app(settings)
    paths = set(app.openapi()["paths"])
    assert {"/v1/subscriptions", "/v1/workflows/recommendations"} <= paths
    with TestClient(app) as client:
        created = client.post("/v1/subscriptions", json={
            "url": "https://crm.example.com/hooks/touchpoint", "events": ["decision.created"]})
        assert created.status_code == 201, created.text
        listed = client.get("/v1/subscriptions").json()
        assert [s["url"] for s in listed] == [
            "https://crm.example.com/hooks/touchpoint"]


def test_outbound_is_off_unless_enabled(settings, tmp_path):
    app = create_app(settings.model_copy(update={"model_registry_dir": tmp_path / "models"}))
    assert "/v1/subscriptions" not in app.openapi()["paths"]
