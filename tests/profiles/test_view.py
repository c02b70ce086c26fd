"""Journey rules and the public profile, table by table (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.profiles.fold import FoldedProfile, event_delta, fold_all
from services.profiles.view import build_profile, infer_journey, timeline_items
from shared.touchpoints import load_catalog
from tests.profiles.streams import T0, event

CATALOG = load_catalog()


def journey_of(*touchpoints: str, orders: int = 0) -> dict:
    events = [event(f"e{i}", tp, i) for i, tp in enumerate(touchpoints)]
    profile = fold_all([event_delta(e, CATALOG, "c:c-1") for e in events]).get(
        "c:c-1", FoldedProfile({}, [], []))
    return infer_journey(timeline_items(profile, CATALOG), CATALOG, orders)


@pytest.mark.parametrize(
    ("touchpoints", "orders", "phase", "step", "cycle"),
    [
        ((), 0, "pre_purchase", None, 0),
        (("ads.click", "web.product_view"), 0, "pre_purchase", "research", 0),
        (("web.product_view", "web.add_to_cart"), 0, "purchase", "purchase", 0),
        (("web.visit", "chat.message"), 0, "purchase", "contact", 0),
        (("web.add_to_cart", "web.purchase"), 1, "post_purchase", "purchase", 0),
        (("web.purchase", "delivery.delivered"), 1, "post_purchase", "after_sales", 0),
        (("web.purchase", "email.send", "push.send"), 1, "post_purchase", "purchase", 0),
        (("web.purchase", "hotline.call"), 1, "post_purchase", "purchase", 0),
        (("web.purchase", "web.product_view"), 1, "pre_purchase", "research", 1),
        (("web.purchase", "web.product_view", "web.purchase", "review.write"), 2,
         "post_purchase", "loyalty", 1),
    ],
)
def test_journey_rules(touchpoints, orders, phase, step, cycle):
    journey = journey_of(*touchpoints, orders=orders)
    assert (journey["phase"], journey["step"], journey["cycle"]) == (phase, step, cycle)


def test_phase_changes_carry_their_time():
    journey = journey_of("web.visit", "web.add_to_cart", "web.purchase")
    assert [(c["phase"], c["at"]) for c in journey["changes"]] == [
        ("pre_purchase", "2027-01-20T09:00:00Z"), ("purchase", "2027-01-20T09:01:00Z"),
        ("post_purchase", "2027-01-20T09:02:00Z")]
    assert journey["since"] == "2027-01-20T09:02:00Z"


def test_resolution_closes_earlier_bad_experiences_only():
    events = [event("a", "delivery.failed", 0), event("b", "support.resolved", 10),
              event("c", "support.complaint", 20)]
    stored = fold_all([event_delta(e, CATALOG, "c:c-1") for e in events])["c:c-1"]
    profile = build_profile("c:c-1", stored, CATALOG, T0 + timedelta(days=1))
    assert [b["touchpoint"] for b in profile["satisfaction"]["open_bad_experiences"]] == [
        "support.complaint"]


def test_counts_by_channel_phase_and_signal_come_from_the_catalog():
    events = [event("a", "email.open", 0), event("b", "email.click", 1),
              event("c", "web.visit", 2, channel="app")]
    stored = fold_all([event_delta(e, CATALOG, "c:c-1") for e in events])["c:c-1"]
    activity = build_profile("c:c-1", stored, CATALOG, T0 + timedelta(days=8))["activity"]
    assert activity["channels"]["email"]["total"] == 2 and activity["channels"]["app"]["total"] == 1
    assert "web" not in activity["channels"]
    assert activity["signals"]["engagement"]["total"] == 2
    assert activity["touchpoints"]["email.open"] == {"total": 1, "7d": 0, "30d": 1, "90d": 1}
    assert activity["windows_complete"] is True
