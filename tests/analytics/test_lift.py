"""Recommendation lift against hand-computed intervals and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from services.profiles.analytics.lift import (
    DecisionOutcome,
    Interval,
    RevenueMoments,
    lift_by_action,
    newcombe_difference_interval,
    welch_difference_interval,
    wilson_interval,
)


def test_wilson_interval_by_hand():
    # 56 of 70, z = 1.959964, z^2 = 3.841459
    # centre = (0.8 + 3.841459 / 140) / (1 + 3.841459 / 70) = 0.827439 / 1.054878 = 0.784393
    # half   = 1.959964 / 1.054878 * sqrt(0.16 / 70 + 3.841459 / 19600) = 0.092560
    interval = wilson_interval(56, 70)
    assert interval.low == pytest.approx(0.691834, abs=1e-6)
    assert interval.high == pytest.approx(0.876953, abs=1e-6)


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (3, 1000)])
def test_wilson_interval_matches_scipy(successes, n):
    reference = stats.binomtest(successes, n).proportion_ci(0.95, method="wilson")
    interval = wilson_interval(successes, n)
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high))


def test_newcombe_interval_by_hand():
    # treated 56/70 = 0.8, holdout 48/80 = 0.6, difference 0.2
    # Wilson 56/70: 0.691834 .. 0.876953; Wilson 48/80: 0.490455 .. 0.700382
    # low  = 0.2 - sqrt((0.8 - 0.691834)^2 + (0.700382 - 0.6)^2) = 0.2 - 0.147568 = 0.052432
    # high = 0.2 + sqrt((0.876953 - 0.8)^2 + (0.6 - 0.490455)^2) = 0.2 + 0.133873 = 0.333873
    interval = newcombe_difference_interval(56, 70, 48, 80)
    assert interval.low == pytest.approx(0.052432, abs=1e-6)
    assert interval.high == pytest.approx(0.333873, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.data())
def test_newcombe_interval_from_scipy_wilson_limits(n_a, n_b, data):
    k_a = data.draw(st.integers(0, n_a))
    k_b = data.draw(st.integers(0, n_b))
    a = stats.binomtest(k_a, n_a).proportion_ci(0.95, method="wilson")
    b = stats.binomtest(k_b, n_b).proportion_ci(0.95, method="wilson")
    p_a, p_b = k_a / n_a, k_b / n_b
    expected_low = p_a - p_b - math.sqrt((p_a - a.low) ** 2 + (b.high - p_b) ** 2)
    expected_high = p_a - p_b + math.sqrt((a.high - p_a) ** 2 + (p_b - b.low) ** 2)
    interval = newcombe_difference_interval(k_a, n_a, k_b, n_b)
    assert (interval.low, interval.high) == pytest.approx((expected_low, expected_high), abs=1e-9)
    assert -1 <= interval.low <= p_a - p_b <= interval.high <= 1


TREATED_REVENUE = [0.0, 0.0, 120.0, 80.0, 0.0, 200.0]
HOLDOUT_REVENUE = [0.0, 50.0, 0.0, 0.0, 10.0]


def test_welch_interval_by_hand():
    # treated: n 6, mean 400/6 = 66.667, sample variance 34133.33 / 5 = 6826.667
    # holdout: n 5, mean 12, sample variance 1880 / 4 = 470
    # se = sqrt(6826.667 / 6 + 470 / 5) = sqrt(1137.778 + 94) = 35.0967
    # df = 1231.778^2 / (1137.778^2 / 5 + 94^2 / 4) = 5.8107, t(0.975, 5.8107) = 2.46637
    # 54.667 -/+ 2.46637 * 35.0967 = -31.8945 .. 141.2279
    interval = welch_difference_interval(
        RevenueMoments.from_values(TREATED_REVENUE), RevenueMoments.from_values(HOLDOUT_REVENUE)
    )
    assert interval == Interval(
        pytest.approx(-31.8945, abs=1e-3), pytest.approx(141.2279, abs=1e-3)
    )


# scipy warns when one group has identical values (variance 0); the interval is still exact
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 5000).map(float), min_size=2, max_size=40),
    st.lists(st.integers(0, 5000).map(float), min_size=2, max_size=40),
)
def test_welch_interval_matches_scipy_ttest(treated, holdout):
    a, b = RevenueMoments.from_values(treated), RevenueMoments.from_values(holdout)
    interval = welch_difference_interval(a, b)
    if a.variance == 0 and b.variance == 0:
        assert interval == Interval(a.mean - b.mean, a.mean - b.mean)
        return
    reference = stats.ttest_ind(treated, holdout, equal_var=False).confidence_interval(0.95)
    assert (interval.low, interval.high) == pytest.approx(
        (reference.low, reference.high), rel=1e-6, abs=1e-6
    )


def test_welch_interval_needs_two_customers_per_group():
    one = RevenueMoments.from_values([10.0])
    assert welch_difference_interval(one, RevenueMoments.from_values([1.0, 2.0])) is None


def test_revenue_moments_from_running_sums_equal_from_values():
    values = np.array(TREATED_REVENUE)
    from_sums = RevenueMoments.from_sums(len(values), values.sum(), (values**2).sum())
    from_values = RevenueMoments.from_values(values)
    assert from_sums.n == from_values.n == 6
    assert from_sums.mean == pytest.approx(from_values.mean)
    assert from_sums.variance == pytest.approx(from_values.variance)
    assert RevenueMoments.from_sums(0, 0.0, 0.0) == RevenueMoments(0, 0.0, 0.0)


def outcomes(action, version, holdout, responses_and_revenue):
    return [
        DecisionOutcome(action, version, holdout, responded, revenue)
        for responded, revenue in responses_and_revenue
    ]


def test_lift_by_action_groups_and_compares_treated_with_holdout():
    # zalo_voucher v2: treated 3 of 6 responded (revenue 400), holdout 1 of 5 (revenue 60)
    #   response rates 0.5 and 0.2 -> lift 0.3, relative 1.5; revenue per customer 66.667 - 12
    treated = [(False, 0.0), (False, 0.0), (True, 120.0), (True, 80.0), (False, 0.0), (True, 200.0)]
    # revenue without a response: a purchase not triggered by the action still counts as revenue
    holdout = [(False, 0.0), (True, 50.0), (False, 0.0), (False, 0.0), (False, 10.0)]
    records = [
        *outcomes("zalo_voucher", "v2", False, treated),
        *outcomes("zalo_voucher", "v2", True, holdout),
        *outcomes("zalo_voucher", "v1", False, [(True, 30.0), (False, 0.0)]),
        *outcomes("email_reminder", "v2", False, [(False, 0.0)]),
    ]
    email, v1, v2 = lift_by_action(records)
    assert (email.action, v1.model_version, v2.model_version) == ("email_reminder", "v1", "v2")

    assert (v2.decisions, v2.outcomes) == (11, 4)
    assert (v2.treated.customers, v2.treated.responses, v2.treated.revenue) == (6, 3, 400.0)
    assert (v2.holdout.customers, v2.holdout.responses, v2.holdout.revenue) == (5, 1, 60.0)
    assert v2.treated.response_rate == 0.5
    assert v2.holdout.response_rate == 0.2
    assert v2.response_lift == pytest.approx(0.3)
    assert v2.relative_response_lift == pytest.approx(1.5)
    assert v2.response_lift_interval == newcombe_difference_interval(3, 6, 1, 5)
    assert v2.revenue_lift == pytest.approx(400 / 6 - 12)
    assert v2.revenue_lift_interval.low == pytest.approx(-31.8945, abs=1e-3)

    # no holdout customers: counts but no lift
    assert (v1.treated.responses, v1.treated.response_rate, v1.holdout.customers) == (1, 0.5, 0)
    assert v1.response_lift is None and v1.response_lift_interval is None
    assert v1.revenue_lift is None and v1.revenue_lift_interval is None


def test_zero_holdout_rate_has_no_relative_lift():
    records = [
        *outcomes("survey", "v1", False, [(True, 0.0), (False, 0.0)]),
        *outcomes("survey", "v1", True, [(False, 0.0), (False, 0.0)]),
    ]
    (result,) = lift_by_action(records)
    assert result.response_lift == 0.5
    assert result.relative_response_lift is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DecisionOutcome("", "v1", False, True), "outcome.action"),
        (lambda: DecisionOutcome("sms", "", False, True), "outcome.model_version"),
        (lambda: DecisionOutcome("sms", "v1", False, True, -5.0), "outcome.revenue"),
        (lambda: DecisionOutcome("sms", "v1", False, True, math.inf), "outcome.revenue"),
        (lambda: wilson_interval(3, 2), "successes"),
        (lambda: wilson_interval(1, 10, confidence=1.0), "confidence"),
    ],
)
def test_invalid_input_is_rejected_with_the_field_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
