"""Benchmark data: request bodies, fresh ids per pass, the bench action catalog, webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson

from services.bench import dataset
from services.ingestion.webhooks import shopify
from shared.actions import load_actions
from shared.events import ValidationRules, validate_event
from shared.touchpoints import load_catalog

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_live_events_happened_in_the_last_hour_and_are_valid():
    events = dataset.live_events(NOW, 300, "t", seed=2)
    assert len(events) == 300
    rules = ValidationRules(load_catalog(), NOW)
    for event in events:
        moment = datetime.fromisoformat(event["occurred_at"])
        assert NOW - timedelta(hours=1) <= moment <= NOW
        validate_event(event, rules)


def test_every_pass_over_the_bodies_gets_new_event_ids():
    bodies = dataset.batch_bodies(dataset.live_events(NOW, 100, "t", seed=2), 50)
    body_for = dataset.cycle_bodies(bodies)
    ids = set()
    for index in range(6):  # three passes over two bodies
        events = orjson.loads(body_for(index))["events"]
        assert len(events) == 50
        ids.update(e["event_id"] for e in events)
    assert len(ids) == 300


def test_bench_actions_load_as_a_user_catalog_without_eligibility_limits(tmp_path):
    path = tmp_path / "actions.json"
    path.write_text(json.dumps(dataset.bench_actions(60)), "utf-8")
    catalog = load_actions(path)
    bench = [catalog[f"bench_offer_{n:02d}"] for n in range(60)]
    assert all(a.consent is None and a.cooldown_hours == 0 and not a.service_recovery
               for a in bench)
    assert all(set(a.phases) == {"pre_purchase", "purchase", "post_purchase"} for a in bench)
    assert "no_action" in catalog  # the default actions stay


def test_shopify_orders_map_to_order_events():
    body, headers = dataset.shopify_order(NOW, 7)
    headers[shopify.SIGNATURE_HEADER] = shopify.signature("secret", body)
    shopify.verify(headers, body, "http://x/v1/webhooks/shopify", "secret", NOW)
    items = shopify.to_events(shopify.parse(headers, body))
    events = [item for item in items if isinstance(item, dict)]
    assert len(events) == 1
    assert events[0]["touchpoint"] == "order.confirmation"
