"""Lift from running sums equals lift from one outcome per decision."""

from __future__ import annotations

import pytest

from services.profiles.analytics.lift import DecisionOutcome, action_lift
from services.profiles.analytics.outcomes import GroupSums, lift_from_sums

CASES = {
    "both groups": (
        [(True, 100.0), (True, 0.0), (False, 0.0), (True, 250.0), (False, 0.0)],
        [(False, 0.0), (True, 80.0), (False, 0.0)],
    ),
    "no holdout responses": ([(True, 10.0), (False, 0.0)], [(False, 0.0), (False, 0.0)]),
    "one holdout customer": ([(True, 10.0), (True, 30.0)], [(True, 5.0)]),
    "no holdout": ([(True, 10.0)], []),
}


def sums(outcomes: list[tuple[bool, float]]) -> GroupSums:
    return GroupSums(
        customers=len(outcomes), responses=sum(r for r, _ in outcomes),
        revenue=sum(v for _, v in outcomes), revenue_squares=sum(v * v for _, v in outcomes),
    )


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_sums_give_the_same_lift_as_outcomes(case):
    treated, holdout = CASES[case]
    expected = action_lift(
        "a", "v1",
        [DecisionOutcome("a", "v1", False, r, v) for r, v in treated],
        [DecisionOutcome("a", "v1", True, r, v) for r, v in holdout],
    )
    got = lift_from_sums("a", "v1", sums(treated), sums(holdout))
    assert got.treated == expected.treated
    assert got.holdout == expected.holdout
    for name in ("response_lift", "relative_response_lift", "revenue_lift"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name))
    for name in ("response_lift_interval", "revenue_lift_interval"):
        want, have = getattr(expected, name), getattr(got, name)
        if want is None:
            assert have is None
        else:
            assert (have.low, have.high) == pytest.approx((want.low, want.high))


def test_hand_computed_response_lift():
    # treated 3 of 5 respond (0.6), holdout 1 of 3 (1/3): lift 0.2667
    got = lift_from_sums("a", "v1", sums(CASES["both groups"][0]), sums(CASES["both groups"][1]))
    assert got.response_lift == pytest.approx(0.6 - 1 / 3)
    assert got.decisions == 8 and got.outcomes == 4
