"""`profile_features`: one flat dict, pure, as of `now`."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from shared.features import NEVER_DAYS, profile_features

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def profile(**parts) -> dict:
    base = {"customer_id": "c-1", "anonymous_ids": [], "as_of": iso(0),
            "first_seen": iso(100), "last_seen": iso(2),
            "journey": {"phase": "post_purchase", "step": "after_sales", "since": iso(10),
                        "cycle": 1, "loyal": False},
            "activity": {"events": 5, "events_decayed": {"7d": 1.0, "30d": 2.0, "90d": 4.0},
                         "channels": {"email": {"total": 3, "30d": 1.5, "last_at": iso(3)}},
                         "phases": {}, "signals": {}},
            "value": {"orders": 0, "refunds": 0, "revenue": {}, "currency": None,
                      "average_order_value": None, "last_purchase_at": None,
                      "first_purchase_at": None},
            "satisfaction": {"ratings": 0, "nps": {}, "sentiment": {},
                             "open_bad_experiences": []},
            "consent": {}, "outreach": {"contacts": [], "by_channel": {}},
            "decision_outcomes": []}
    base.update(parts)
    return base


def test_a_profile_without_purchases():
    features = profile_features(profile(), NOW)
    assert features["phase"] == "post_purchase" and features["journey_cycle"] == 1
    assert features["days_in_phase"] == 10 and features["days_since_last_seen"] == 2
    assert features["has_purchased"] is False
    assert features["days_since_last_purchase"] == NEVER_DAYS
    assert (features["rfm_recency"], features["rfm_segment"]) == (0, "prospect")
    assert features["channel_total.email"] == 3 and features["days_since_channel.email"] == 3
    assert all(isinstance(v, float | int | str | bool) for v in features.values())


@pytest.mark.parametrize(
    ("days_ago", "orders", "revenue", "recency", "frequency", "segment"),
    [
        (3, 12, 9e6, 5, 5, "champion"),
        (20, 3, 1e6, 4, 3, "loyal"),
        (200, 4, 2e6, 1, 3, "at_risk"),
        (5, 1, 4e5, 5, 1, "new"),
        (400, 1, 1e5, 1, 1, "hibernating"),
    ],
)
def test_rfm_scores(days_ago, orders, revenue, recency, frequency, segment):
    value = {"orders": orders, "refunds": 0, "revenue": {"VND": revenue}, "currency": "VND",
             "average_order_value": revenue / orders, "last_purchase_at": iso(days_ago),
             "first_purchase_at": iso(500)}
    features = profile_features(profile(value=value), NOW)
    assert (features["rfm_recency"], features["rfm_frequency"], features["rfm_segment"]) == (
        recency, frequency, segment)
    assert features["days_since_last_purchase"] == days_ago


def test_decayed_counts_are_carried_to_now():
    later = NOW + timedelta(days=30)
    features = profile_features(profile(), later)
    assert features["events_30d"] == pytest.approx(2.0 * math.exp(-1), abs=1e-4)
    assert features["events_7d"] == pytest.approx(1.0 * math.exp(-30 / 7), abs=1e-4)


def test_contact_history_counts_exact_windows_per_channel():
    outreach = {"contacts": [{"at": iso(0.5), "channel": "email", "action_id": "a"},
                             {"at": iso(3), "channel": "email", "action_id": "b"},
                             {"at": iso(10), "channel": "zalo", "action_id": "c"}],
                "by_channel": {"email": {"count": 2, "last_at": iso(0.5)},
                               "zalo": {"count": 1, "last_at": iso(10)}}}
    consent = {"email": {"status": "opt_in", "at": iso(50)},
               "zalo": {"status": "opt_out", "at": iso(5)}}
    features = profile_features(profile(outreach=outreach, consent=consent), NOW)
    assert features["contacts_24h.email"] == 1 and features["contacts_7d.email"] == 2
    assert features["contacts_7d.zalo"] == 0 and features["contacts_7d"] == 2
    assert features["days_since_last_contact"] == 0.5
    assert features["contactable.email"] is True and features["contactable.zalo"] is False


def test_satisfaction_features():
    satisfaction = {"ratings": 2, "average_rating": 2.5, "last_rating": {"value": 1},
                    "nps": {"responses": 2, "promoters": 1, "detractors": 1,
                            "last": {"value": 3}},
                    "sentiment": {"negative": 1, "last": {"value": "negative"}},
                    "open_bad_experiences": [{"touchpoint": "delivery.failed"}],
                    "last_bad_experience_at": iso(1)}
    features = profile_features(profile(satisfaction=satisfaction), NOW)
    assert features["nps_category"] == "detractor" and features["nps_score"] == 0.0
    assert features["open_bad_experiences"] == 1 and features["last_rating"] == 1
    assert features["sentiment_last"] == "negative"


def test_same_input_same_output():
    assert profile_features(profile(), NOW) == profile_features(profile(), NOW)
