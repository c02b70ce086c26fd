"""Benchmark data: simulated customer histories as stream records, request bodies, actions.

Histories go straight onto the touchpoint topic in exactly the record layout the ingestion
service produces (each event validated against the catalog, then `event_record`), so the profile
consumer folds them as it would live traffic. Request bodies for the HTTP scenarios are built
before a run starts, so the load generator only sends bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson

from services.simulator import CustomerHistory, JourneySimulator
from shared.events import ValidationRules, validate_event
from shared.stream import Record, event_record
from shared.touchpoints import TouchpointCatalog

HISTORY_DAYS = 180
SEED = 20_261_123


def history_simulator(now: datetime, prefix: str = "c") -> JourneySimulator:
    """Histories of the loaded customers: 180 days up to `now`."""
    return JourneySimulator(seed=SEED, start=now - timedelta(days=HISTORY_DAYS), end=now,
                            customer_prefix=prefix)


def history_records_of(history: CustomerHistory, catalog: TouchpointCatalog,
                       now: datetime) -> Iterator[Record]:
    """One customer's events as `touchpoints.v1` records, validated like ingestion does."""
    rules = ValidationRules(catalog, now)
    for event in history.events:
        yield event_record(validate_event(event, rules, source="simulator"))


def live_events(now: datetime, count: int, prefix: str, seed: int = 1) -> list[dict[str, Any]]:
    """`count` events that happened in the last hour, from fresh simulated customers."""
    simulator = JourneySimulator(seed=seed, start=now - timedelta(hours=1), end=now,
                                 customer_prefix=prefix)
    events: list[dict[str, Any]] = []
    index = 0
    while len(events) < count:
        events.extend(simulator.customer(index).events)
        index += 1
    return events[:count]


def batch_bodies(events: list[dict[str, Any]], size: int) -> list[bytes]:
    return [orjson.dumps({"events": events[i:i + size]}) for i in range(0, len(events), size)]


def single_bodies(events: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(event) for event in events]


def cycle_bodies(bodies: list[bytes]) -> Callable[[int], bytes]:
    """Body i of an endless run: the list again and again, with new event ids on each pass."""
    count = len(bodies)
    return lambda i: with_fresh_ids(bodies[i % count], i // count)


def with_fresh_ids(body: bytes, round_number: int) -> bytes:
    """The same request body with every simulated event id made new for this round."""
    return body if round_number == 0 else body.replace(b'"sim', f'"r{round_number}sim'.encode())


def bench_actions(count: int = 60) -> dict[str, Any]:
    """A user action catalog of `count` extra actions every customer is eligible for.

    Without consent requirements, cooldowns or phase limits, so that a request with N
    candidates really scores N eligible actions (the default catalog has 19 actions, many
    of them limited to one phase or to an opted-in channel).
    """
    channels = ("email", "zalo", "messenger", "sms", "push", "ads", "chat")
    actions = []
    for n in range(count):
        channel = channels[n % len(channels)]
        actions.append({
            "id": f"bench_offer_{n:02d}",
            "label": {"vi": f"Ưu đãi thử nghiệm {n}", "en": f"Benchmark offer {n}"},
            "channel": channel,
            "touchpoint": None,
            "templates": {"vi": "Chào {first_name}, ưu đãi {discount} dành cho bạn",
                          "en": "Hi {first_name}, {discount} off for you"},
            "cost": 100 + 10 * n,
            "value": 50_000 + 1000 * n,
            "incentive": round((n % 5) / 10, 2),
            "prior_success_rate": 0.02 + (n % 7) / 100,
            "features": {"urgency": float(n % 2), "personal": float(n % 3 == 0)},
        })
    return {"version": 1, "currency": "VND", "actions": actions}


def shopify_order(now: datetime, n: int) -> tuple[bytes, dict[str, str]]:
    """A signed-ready Shopify `orders/create` body and its headers (signature added later)."""
    body = orjson.dumps({
        "id": 5_000_000 + n,
        "email": f"buyer{n}@example.vn",
        "created_at": (now - timedelta(seconds=n % 60)).isoformat(),
        "updated_at": now.isoformat(),
        "currency": "VND",
        "total_price": str(250_000 + (n % 50) * 10_000),
        "line_items": [{"sku": f"SKU-{n % 97}", "quantity": 1, "price": "250000"}],
        "customer": {"id": 9_000_000 + n % 5000, "email": f"buyer{n}@example.vn"},
    })
    headers = {"X-Shopify-Topic": "orders/create",
               "X-Shopify-Event-Id": f"bench-{n}-{time.time_ns()}",
               "X-Shopify-Shop-Domain": "bench.myshopify.com"}
    return body, headers
