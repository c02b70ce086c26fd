"""The analytics API over aggregates loaded into a real Redis."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from services.profiles.analytics.demo_data import demo_data
from services.profiles.analytics.store import AggregateConfig, AnalyticsStore
from shared.api_keys import KeyStore
from shared.settings import Settings
from tests.analytics.apps import analytics_app

END = datetime.now(UTC).replace(microsecond=0)
SPAN = f"from={(END - timedelta(days=91)).date()}&to={END.date()}"


@pytest.fixture(scope="module")
def loaded(redis_server):
    """One loaded namespace for the whole module: the tests only read."""
    client = redis.Redis.from_url(redis_server.url)
    settings = Settings(redis_url=redis_server.url, redis_namespace=f"t{uuid.uuid4().hex[:10]}")
    store = AnalyticsStore(client, settings.redis_namespace, AggregateConfig())
    data = demo_data(4000, int(END.timestamp() * 1000), days=90, seed=11)
    store.record(data.events, data.decisions, now_s=int(END.timestamp()))
    store.close_quiet_journeys()
    with TestClient(analytics_app(settings, client)) as http:
        yield http, data
    client.close()


def test_effectiveness_rows_add_up_to_the_loaded_events(loaded):
    client, data = loaded
    body = client.get(f"/v1/analytics/touchpoints?{SPAN}").json()
    assert body["totals"]["events"] == len(data.events)
    by_touchpoint = {}
    for row in body["rows"]:
        by_touchpoint[row["touchpoint"]] = by_touchpoint.get(row["touchpoint"], 0) + row["events"]
    expected = {}
    for e in data.events:
        expected[e.touchpoint] = expected.get(e.touchpoint, 0) + 1
    assert by_touchpoint == expected
    purchases = [e for e in data.events if e.purchase]
    assert body["totals"]["purchases"] == len(purchases)
    assert body["totals"]["revenue"] == pytest.approx(sum(e.value for e in purchases))
    customers = len({e.subject for e in data.events})
    assert abs(body["totals"]["customers"] - customers) <= 0.03 * customers  # HyperLogLog


def test_filters_narrow_the_table(loaded):
    client, _ = loaded
    everything = client.get(f"/v1/analytics/touchpoints?{SPAN}").json()
    zalo = client.get(f"/v1/analytics/touchpoints?{SPAN}&channel=zalo").json()
    assert {row["channel"] for row in zalo["rows"]} == {"zalo"}
    assert zalo["totals"]["events"] == sum(
        r["events"] for r in everything["rows"] if r["channel"] == "zalo"
    )
    post = client.get(f"/v1/analytics/touchpoints?{SPAN}&phase=post_purchase").json()
    assert {row["phase"] for row in post["rows"]} == {"post_purchase"}
    segments = [
        client.get(f"/v1/analytics/touchpoints?{SPAN}&segment={s}").json()["totals"]["events"]
        for s in ("prospect", "first_time_buyer", "repeat_buyer")
    ]
    assert sum(segments) == everything["totals"]["events"] and all(segments)


def test_attribution_models_side_by_side_sum_to_the_converted_journeys(loaded):
    client, _ = loaded
    body = client.get(f"/v1/analytics/attribution?{SPAN}").json()
    assert [m["model"] for m in body["models"]] == [
        "first_touch", "last_touch", "linear", "time_decay", "position_based", "markov_chain",
        "shapley",
    ]
    assert body["converted_journeys"] > 0 and body["journeys"] > body["converted_journeys"]
    for model in body["models"]:
        total = sum(c["conversions"] for c in model["credits"])
        assert total == pytest.approx(body["converted_journeys"], rel=1e-6), model["model"]
    by_touchpoint = client.get(f"/v1/analytics/attribution?{SPAN}&key=touchpoint").json()
    assert "." in by_touchpoint["keys"][0]
    prospects = client.get(f"/v1/analytics/attribution?{SPAN}&segment=prospect").json()
    assert 0 < prospects["journeys"] < body["journeys"]


def test_journeys_funnel_and_sankey(loaded):
    client, data = loaded
    body = client.get(f"/v1/analytics/journeys?{SPAN}").json()
    funnel = body["funnel"]
    assert [s["stage"] for s in funnel] == ["pre_purchase", "purchase", "post_purchase", "loyal"]
    assert funnel[0]["customers"] == len({e.subject for e in data.events})
    assert funnel[1]["customers"] == len({e.subject for e in data.events if e.purchase})
    for step, following in itertools.pairwise(funnel):
        assert step["dropped_off"] == step["customers"] - following["customers"]
    nodes = {n["id"]: n["customers"] for n in body["sankey"]["nodes"]}
    assert sum(v for k, v in nodes.items() if k.startswith("0:")) == funnel[0]["customers"]
    for link in body["sankey"]["links"]:
        assert link["value"] <= nodes[link["source"]]
    steps = client.get(f"/v1/analytics/journeys?{SPAN}&facet=journey_step").json()
    assert any(n["name"] == "research" for n in steps["sankey"]["nodes"])


def test_recommendation_results_with_intervals(loaded):
    client, data = loaded
    body = client.get(f"/v1/analytics/recommendations?{SPAN}").json()
    assert sum(a["decisions"] for a in body["actions"]) == len(data.decisions)
    for action in body["actions"]:
        interval = action["response_lift_interval"]
        assert interval["low"] <= action["response_lift"] <= interval["high"]


def test_live_rate_counts_processed_events(loaded):
    client, data = loaded
    body = client.get("/v1/analytics/live?seconds=3600").json()
    assert sum(p["events"] for p in body["series"]) in (0, len(data.events))
    assert body["latest_event_time"] is not None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2027-02-01&to=2027-01-01", "from"),
        ("from=2020-01-01&to=2027-01-01", "from"),
        ("channel=carrier_pigeon", "channel"),
        ("segment=vip", "segment"),
        ("phase=during", "phase"),
        ("from=yesterday", "from"),
    ],
)
def test_bad_filters_get_a_422_naming_the_field(loaded, query, field):
    client, _ = loaded
    response = client.get(f"/v1/analytics/touchpoints?{query}")
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]


def test_openapi_documents_every_route_with_examples(loaded):
    client, _ = loaded
    spec = client.get("/openapi.json").json()
    for path in ("touchpoints", "attribution", "journeys", "recommendations", "live"):
        assert f"/v1/analytics/{path}" in spec["paths"]
    for schema in ("Effectiveness", "Attribution", "Journeys", "Recommendations", "LiveRate"):
        assert spec["components"]["schemas"][schema].get("examples"), schema


def test_dashboard_page_and_local_chart_library(loaded):
    client, _ = loaded
    page = client.get("/dashboard")
    assert page.status_code == 200 and "/dashboard/static/vendor/echarts.min.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    library = client.get("/dashboard/static/vendor/echarts.min.js")
    assert library.status_code == 200 and len(library.content) > 500_000
    assert library.headers["content-type"].startswith("text/javascript")
    assert client.get("/dashboard/static/../api.py").status_code == 404
    assert client.get("/dashboard/static/vendor/echarts.min.js.sha256").status_code == 404


def test_the_json_routes_need_a_key_with_profiles_read(redis_server, tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    reader_key = store.create("analyst", ["profiles:read"], END)[1]
    writer_key = store.create("ingest", ["events:write"], END)[1]
    settings = Settings(redis_url=redis_server.url, redis_namespace="keys")
    with TestClient(analytics_app(settings, key_store=store)) as client:
        assert client.get("/v1/analytics/touchpoints").status_code == 401
        denied = client.get("/v1/analytics/live", headers={"X-API-Key": writer_key})
        assert denied.status_code == 403
        allowed = client.get("/v1/analytics/live", headers={"X-API-Key": reader_key})
        assert allowed.status_code == 200
        assert client.get("/dashboard").status_code == 200  # the page asks for a key itself
