"""The journey simulator: valid events, deterministic by seed, realistic coverage."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.simulator import PERSONAS, JourneySimulator
from shared.events import ValidationRules, validate_event
from shared.touchpoints import load_catalog

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START = END - timedelta(days=120)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def histories():
    return list(JourneySimulator(seed=11, start=START, end=END).customers(1500))


def test_every_generated_event_passes_validation(histories, catalog):
    rules = ValidationRules(catalog, END)
    count = 0
    for history in histories:
        for event in history.events:
            validated = validate_event(event, rules, source="simulator")
            assert validated.event_id == event["event_id"]
            count += 1
    assert count > 5 * len(histories)


def test_same_seed_same_history_and_slices_regenerate_alone():
    one = JourneySimulator(seed=3, start=START, end=END)
    two = JourneySimulator(seed=3, start=START, end=END)
    assert list(one.events(50)) == list(two.events(50))
    # Customer 40 is the same whether generated in a run from 0 or on its own.
    assert list(one.customers(50))[40] == two.customer(40)


def test_another_seed_gives_another_population():
    one = list(JourneySimulator(seed=3, start=START, end=END).events(50))
    two = list(JourneySimulator(seed=4, start=START, end=END).events(50))
    assert [e["touchpoint"] for e in one] != [e["touchpoint"] for e in two]


def test_times_stay_in_the_window_and_never_go_back_within_a_customer(histories):
    for history in histories:
        times = [datetime.fromisoformat(e["occurred_at"]) for e in history.events]
        assert all(START <= t <= END for t in times)
        assert times == sorted(times)


def test_event_ids_are_unique(histories):
    ids = [e["event_id"] for h in histories for e in h.events]
    assert len(ids) == len(set(ids))


def test_anonymous_visitors_are_identified_later_by_an_event_carrying_both_ids(
    histories, catalog
):
    identified_later = never_identified = 0
    for history in histories:
        if history.anonymous_id is None:
            assert all(e["customer_id"] == history.customer_id for e in history.events)
            continue
        both = [n for n, e in enumerate(history.events)
                if "anonymous_id" in e and "customer_id" in e]
        if not both:
            never_identified += 1
            assert all("customer_id" not in e for e in history.events)
            continue
        link = both[0]
        assert len(both) == 1
        assert catalog[history.events[link]["touchpoint"]].has("identify")
        assert all("customer_id" not in e for e in history.events[:link])
        assert all(e.get("customer_id") == history.customer_id
                   for e in history.events[link:])
        if link > 0:
            identified_later += 1
    assert identified_later > 50
    assert never_identified > 20


def test_population_covers_the_journeys_of_the_domain(histories, catalog):
    touchpoints = Counter(e["touchpoint"] for h in histories for e in h.events)
    for expected in ("ads.click", "search.organic_visit", "social.comment", "review.read",
                     "review.write", "store.purchase", "web.purchase", "marketplace.purchase",
                     "hotline.warranty_call", "survey.response", "delivery.failed",
                     "support.complaint", "email.subscribe", "email.unsubscribe",
                     "zalo.follow", "loyalty.redeem", "referral.word_of_mouth"):
        assert touchpoints[expected] > 0, expected
    personas = Counter(h.persona for h in histories)
    assert set(personas) == set(PERSONAS)
    assert personas["browser"] > personas["marketplace_buyer"]


def test_outcomes_carry_their_values(histories, catalog):
    for event in (e for h in histories for e in h.events):
        entry = catalog[event["touchpoint"]]
        if entry.has("purchase"):
            assert event["value"] > 0 and event["currency"] == "VND"
        if event["touchpoint"] == "survey.response":
            assert 1 <= event["rating"] <= 5 and 0 <= event["nps"] <= 10
        if entry.consent_effect is not None and "consent" in event:
            assert event["consent"] == {
                entry.consent_effect.channel: entry.consent_effect.status.value}


def test_unhappy_customers_meet_a_bad_experience_and_browsers_never_buy(histories, catalog):
    for history in histories:
        signals = {s for e in history.events for s in catalog[e["touchpoint"]].signals}
        if history.persona == "unhappy":
            assert "bad_experience" in signals
        if history.persona == "browser":
            assert "purchase" not in signals


def test_stream_is_time_ordered_and_holds_the_same_events():
    sim = JourneySimulator(seed=5, start=START, end=END)
    streamed = list(sim.stream(200))
    assert sorted(e["event_id"] for e in streamed) == sorted(e["event_id"] for e in sim.events(200))
    times = [datetime.fromisoformat(e["occurred_at"]) for e in streamed]
    assert times == sorted(times)


@pytest.mark.parametrize("start,end", [
    (START, START),
    (END, START),
    (datetime(2026, 1, 1), END),
])
def test_bad_windows_are_refused(start, end):
    with pytest.raises(ValueError):
        JourneySimulator(start=start, end=end)
