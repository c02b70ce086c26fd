"""The memory breakdown of the benchmark against a real Redis (every key counted once, in its
family), and when the memory target counts as met."""

from __future__ import annotations

from datetime import UTC, datetime

from services.bench.history_load import memory_by_family
from services.bench.scenarios import Context, Plan, memory_per_customer
from services.profiles.fold import event_delta
from services.profiles.store import ProfileStore
from shared.touchpoints import load_catalog
from tests.profiles.streams import event


def test_every_key_of_the_namespace_is_counted_in_its_family(redis_client, settings):
    store = ProfileStore(redis_client, settings.redis_namespace)
    catalog = load_catalog()
    store.apply([event_delta(event(f"e{i}", "web.visit", i, customer_id=f"c-{i}"), catalog,
                             f"c:c-{i}") for i in range(3)])
    ns = settings.redis_namespace
    redis_client.set(f"{ns}:{{a:v-1}}:alias", "c-1")
    redis_client.set(f"{ns}:an:c:c-1:st", "x" * 300)
    redis_client.hset(f"{ns}:an:d:2027-01-20:tp", "f", 1)
    redis_client.set(f"{ns}:something-else", "y")
    redis_client.set(f"{ns}x:{{c:c-1}}:p", "another namespace")

    families = memory_by_family(settings, people=2)

    assert {name: entry["keys"] for name, entry in families.items()} == {
        "customer profiles": 3, "aliases": 1, "analytics per-person state": 1,
        "analytics aggregates": 1, "other": 1}
    profiles = sum(redis_client.memory_usage(f"{ns}:{{c:c-{i}}}:p", samples=0)
                   for i in range(3))
    assert families["customer profiles"]["bytes_per_customer"] == round(profiles / 2, 1)
    assert next(iter(families)) == "customer profiles"  # largest first


def _memory_outcome(loaded: int, planned: int, per_customer: float):
    plan = Plan(customers=planned)
    load = {"customers": loaded, "events": loaded * 12,
            "memory": {"bytes_per_customer": per_customer, "divided_by": loaded,
                       "complete": True, "used_memory_delta": int(per_customer * loaded)}}
    return memory_per_customer(Context(None, plan, datetime.now(UTC), {}), load)


def test_memory_target_is_met_only_on_the_full_population():
    assert _memory_outcome(100_000, 100_000, 2_022).met is True
    assert _memory_outcome(100_000, 100_000, 2_100).met is False
    short = _memory_outcome(94_015, 100_000, 2_030)
    assert short.met is False
    assert "only 94,015 of 100,000 customers loaded" in short.result
