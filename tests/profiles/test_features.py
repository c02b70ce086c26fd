"""`profile_features`: the one feature function, over the stored state, pure, as of `now`."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from services.profiles.view import rfm
from shared.features import CONSENT_CHANNELS, MAX_DAYS, profile_features

NOW = datetime(2027, 3, 1, tzinfo=UTC)
DAY_MS = 86_400_000


def ms(days_ago: float) -> int:
    return int((NOW - timedelta(days=days_ago)).timestamp() * 1000)


def test_a_customer_never_seen():
    features = profile_features({}, NOW)
    assert features["known"] is False and features["phase"] == "pre_purchase"
    assert features["days_since_seen"] == features["days_since_purchase"] == MAX_DAYS
    assert features["orders"] == 0.0 and features["engagement_30d"] == 0.0
    assert not any(features[f"consent_{channel}"] for channel in CONSENT_CHANNELS)
    assert all(isinstance(v, float | int | str | bool) for v in features.values())


@pytest.mark.parametrize(
    ("sums", "last_seen_days", "phase"),
    [
        ({"orders": 1, "t:web.add_to_cart": 2}, 1, "post_purchase"),
        ({"t:web.add_to_cart": 1}, 3, "purchase"),
        ({"t:web.checkout_start": 1}, 29, "purchase"),
        ({"t:web.add_to_cart": 1}, 40, "pre_purchase"),
        ({"t:web.visit": 5}, 1, "pre_purchase"),
    ],
)
def test_phase(sums, last_seen_days, phase):
    state = {"n": {"ev": 1, **sums}, "mx": {"ls": ms(last_seen_days)}}
    assert profile_features(state, NOW)["phase"] == phase


def test_value_recency_and_rating():
    state = {"n": {"ev": 9, "orders": 3, "rv:VND": 900_000.0, "rv:USD": 40.0, "rn": 2, "rs": 7,
                   "contacts": 4},
             "mx": {"ls": ms(2), "lp": ms(12.5)}}
    features = profile_features(state, NOW)
    assert features["known"] is True and features["orders"] == 3.0
    assert features["log_revenue"] == pytest.approx(math.log1p(900_040.0))
    assert features["days_since_seen"] == pytest.approx(2.0)
    assert features["days_since_purchase"] == pytest.approx(12.5)
    assert features["avg_rating"] == 3.5 and features["contacts_total"] == 4.0


def test_decayed_counts_are_carried_to_now():
    state = {"n": {"ev": 3}, "dr": ms(30),
             "dc": {"30": {"s:engagement": 2.0, "s:negative": 1.0}}}
    features = profile_features(state, NOW)
    assert features["engagement_30d"] == pytest.approx(2.0 * math.exp(-1))
    assert features["negative_30d"] == pytest.approx(math.exp(-1))


def test_bad_experience_is_open_until_a_later_resolution():
    bad = {"n": {"ev": 1}, "bx": [[ms(3), "delivery.failed"]], "mx": {"lb": ms(3)}}
    assert profile_features(bad, NOW)["bad_experience_open"] is True
    resolved = {**bad, "mx": {"lb": ms(3), "lr": ms(1)}}
    assert profile_features(resolved, NOW)["bad_experience_open"] is False


def test_consent_is_true_only_for_an_opt_in():
    state = {"n": {"ev": 2}, "lw": {"cs:email": [ms(5), "e1", "opt_in"],
                                    "cs:zalo": [ms(2), "e2", "opt_out"]}}
    features = profile_features(state, NOW)
    assert features["consent_email"] is True
    assert features["consent_zalo"] is False and features["consent_sms"] is False


def test_same_input_same_output():
    state = {"n": {"ev": 2, "orders": 1}, "mx": {"ls": ms(1), "lp": ms(1)}}
    assert profile_features(state, NOW) == profile_features(state, NOW)


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
    scores = rfm(orders, revenue, ms(days_ago), ms(0))
    assert (scores["recency"], scores["frequency"], scores["segment"]) == (
        recency, frequency, segment)


def test_rfm_without_an_order():
    assert rfm(0, 0.0, None, ms(0)) == {"recency": 0, "frequency": 0, "monetary": 0,
                                        "segment": "prospect"}
