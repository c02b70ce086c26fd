"""Audience segments: conditions on the stored profile, all of which must hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.recommender.segments import AudienceSegment

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def ms(days_ago: float) -> int:
    return int((NOW - timedelta(days=days_ago)).timestamp() * 1000)


def state(*, orders=0, revenue=0.0, seen_days_ago=1.0, purchase_days_ago=None,
          opted_in=(), bad_open=False) -> dict:
    stored = {"n": {"ev": 10, "orders": orders, "rv:VND": revenue},
              "mx": {"ls": ms(seen_days_ago)},
              "lw": {f"cs:{channel}": [ms(seen_days_ago), "t", "opt_in"]
                     for channel in opted_in}}
    if purchase_days_ago is not None:
        stored["mx"]["lp"] = ms(purchase_days_ago)
    if bad_open:
        stored["bx"] = [[ms(2), "service.complaint"]]
    return stored


LOYAL = state(orders=4, revenue=4_000_000, seen_days_ago=3, purchase_days_ago=10,
              opted_in=("email", "zalo"))
LAPSED = state(orders=1, revenue=300_000, seen_days_ago=120, purchase_days_ago=150,
               opted_in=("email",))
PROSPECT = state(seen_days_ago=2, opted_in=("zalo",))
UNHAPPY = state(orders=2, revenue=900_000, seen_days_ago=1, purchase_days_ago=20,
                opted_in=("email",), bad_open=True)
PEOPLE = {"loyal": LOYAL, "lapsed": LAPSED, "prospect": PROSPECT, "unhappy": UNHAPPY}

CASES = [
    ({}, {"loyal", "lapsed", "prospect", "unhappy"}),
    ({"phase": ["pre_purchase"]}, {"prospect"}),
    ({"phase": ["post_purchase"]}, {"loyal", "lapsed", "unhappy"}),
    ({"min_orders": 2}, {"loyal", "unhappy"}),
    ({"max_orders": 1}, {"lapsed", "prospect"}),
    ({"min_revenue": 900_000}, {"loyal", "unhappy"}),
    ({"seen_within_days": 7}, {"loyal", "prospect", "unhappy"}),
    ({"not_seen_within_days": 90}, {"lapsed"}),
    ({"purchased_within_days": 14}, {"loyal"}),
    ({"not_purchased_within_days": 60}, {"lapsed", "prospect"}),
    ({"opted_in": ["email"]}, {"loyal", "lapsed", "unhappy"}),
    ({"opted_in": ["email", "zalo"]}, {"loyal"}),
    ({"bad_experience_open": True}, {"unhappy"}),
    ({"phase": ["post_purchase"], "not_purchased_within_days": 60, "opted_in": ["email"],
      "bad_experience_open": False}, {"lapsed"}),
]


@pytest.mark.parametrize(("conditions", "expected"), CASES,
                         ids=[",".join(c) or "everyone" for c, _ in CASES])
def test_a_profile_is_in_a_segment_when_every_condition_holds(conditions, expected):
    segment = AudienceSegment.model_validate(conditions)
    assert {name for name, stored in PEOPLE.items() if segment.matches(stored, NOW)} == expected


@pytest.mark.parametrize(("conditions", "field"), [
    ({"phase": ["loyal"]}, "phase"),
    ({"phase": []}, "phase"),
    ({"opted_in": ["fax"]}, "opted_in"),
    ({"seen_within_days": 0}, "seen_within_days"),
    ({"not_seen_within_days": 400}, "not_seen_within_days"),
    ({"min_orders": -1}, "min_orders"),
    ({"favourite_colour": "red"}, "favourite_colour"),
])
def test_a_bad_condition_is_refused_naming_it(conditions, field):
    with pytest.raises(ValidationError) as raised:
        AudienceSegment.model_validate(conditions)
    assert raised.value.errors()[0]["loc"][0] == field
