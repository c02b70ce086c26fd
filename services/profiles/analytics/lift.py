"""Did our recommendations work better than doing nothing? Treated versus holdout per action.

For every (action, model version): decisions, responses, response rate and revenue of the
treated and holdout groups, the incremental response rate with a Newcombe hybrid score
interval (Newcombe 1998, method 10, built from two Wilson intervals) and the incremental
revenue per customer with a Welch interval. Both intervals need no equal-variance assumption
and stay inside sensible bounds for small or extreme rates where the Wald interval does not.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """One decision for one customer and what came of it."""

    action: str
    model_version: str
    holdout: bool  # True: the decision was withheld on purpose to measure the baseline
    responded: bool
    revenue: float = 0.0

    def __post_init__(self) -> None:
        if not self.action:
            raise ValueError("outcome.action must be a non-empty string")
        if not self.model_version:
            raise ValueError("outcome.model_version must be a non-empty string")
        if not math.isfinite(self.revenue) or self.revenue < 0:
            raise ValueError("outcome.revenue must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class RevenueMoments:
    """Count, mean and sample variance of revenue per customer (zeros included)."""

    n: int
    mean: float
    variance: float

    @classmethod
    def from_values(cls, values: Sequence[float]) -> RevenueMoments:
        array = np.asarray(values, dtype=float)
        variance = float(array.var(ddof=1)) if len(array) > 1 else 0.0
        return cls(len(array), float(array.mean()) if len(array) else 0.0, variance)

    @classmethod
    def from_sums(cls, n: int, total: float, total_squares: float) -> RevenueMoments:
        """From running sums, the form an incremental aggregate keeps."""
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = total / n
        variance = max(total_squares - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, variance)


@dataclass(frozen=True, slots=True)
class GroupResult:
    customers: int
    responses: int
    revenue: float
    response_rate: float | None
    revenue_per_customer: float | None


@dataclass(frozen=True, slots=True)
class ActionLift:
    action: str
    model_version: str
    treated: GroupResult
    holdout: GroupResult
    response_lift: float | None  # treated rate - holdout rate
    response_lift_interval: Interval | None  # Newcombe hybrid score
    relative_response_lift: float | None  # response_lift / holdout rate
    revenue_lift: float | None  # revenue per treated customer - per holdout customer
    revenue_lift_interval: Interval | None  # Welch

    @property
    def decisions(self) -> int:
        return self.treated.customers + self.holdout.customers

    @property
    def outcomes(self) -> int:
        return self.treated.responses + self.holdout.responses


def z_value(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for one proportion (no continuity correction)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError("need 0 <= successes <= n and n > 0")
    z = z_value(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # clamp float rounding: the exact limits lie in [0, 1]
    return Interval(max(centre - half, 0.0), min(centre + half, 1.0))


def newcombe_difference_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = 0.95
) -> Interval:
    """Interval for p_a - p_b combining the Wilson intervals of each group (method 10)."""
    p_a, p_b = successes_a / n_a, successes_b / n_b
    a = wilson_interval(successes_a, n_a, confidence)
    b = wilson_interval(successes_b, n_b, confidence)
    difference = p_a - p_b
    return Interval(
        max(difference - math.hypot(p_a - a.low, b.high - p_b), -1.0),
        min(difference + math.hypot(a.high - p_a, p_b - b.low), 1.0),
    )


def welch_difference_interval(
    a: RevenueMoments, b: RevenueMoments, confidence: float = 0.95
) -> Interval | None:
    """Interval for mean_a - mean_b without assuming equal variances; None below 2 per group."""
    if a.n < 2 or b.n < 2:
        return None
    difference = a.mean - b.mean
    va, vb = a.variance / a.n, b.variance / b.n
    standard_error = math.sqrt(va + vb)
    if standard_error == 0:
        return Interval(difference, difference)
    freedom = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    t = float(stats.t.ppf(0.5 + confidence / 2, freedom))
    return Interval(difference - t * standard_error, difference + t * standard_error)


def group_result(outcomes: Sequence[DecisionOutcome]) -> GroupResult:
    customers = len(outcomes)
    responses = sum(outcome.responded for outcome in outcomes)
    revenue = float(sum(outcome.revenue for outcome in outcomes))
    return GroupResult(
        customers=customers,
        responses=responses,
        revenue=revenue,
        response_rate=responses / customers if customers else None,
        revenue_per_customer=revenue / customers if customers else None,
    )


def action_lift(
    action: str,
    model_version: str,
    treated: Sequence[DecisionOutcome],
    holdout: Sequence[DecisionOutcome],
    confidence: float = 0.95,
) -> ActionLift:
    """Lift of one action and model version; lift fields are None without both groups."""
    t, h = group_result(treated), group_result(holdout)
    if not t.customers or not h.customers:
        return ActionLift(action, model_version, t, h, None, None, None, None, None)
    t_rate, h_rate = t.responses / t.customers, h.responses / h.customers
    lift = t_rate - h_rate
    return ActionLift(
        action=action,
        model_version=model_version,
        treated=t,
        holdout=h,
        response_lift=lift,
        response_lift_interval=newcombe_difference_interval(
            t.responses, t.customers, h.responses, h.customers, confidence
        ),
        relative_response_lift=lift / h_rate if h_rate else None,
        revenue_lift=t.revenue / t.customers - h.revenue / h.customers,
        revenue_lift_interval=welch_difference_interval(
            RevenueMoments.from_values([o.revenue for o in treated]),
            RevenueMoments.from_values([o.revenue for o in holdout]),
            confidence,
        ),
    )


def lift_by_action(
    outcomes: Iterable[DecisionOutcome], confidence: float = 0.95
) -> list[ActionLift]:
    """One `ActionLift` per (action, model version), sorted by action then version."""
    groups: dict[tuple[str, str], tuple[list[DecisionOutcome], list[DecisionOutcome]]] = (
        defaultdict(lambda: ([], []))
    )
    for outcome in outcomes:
        treated, holdout = groups[(outcome.action, outcome.model_version)]
        (holdout if outcome.holdout else treated).append(outcome)
    return [
        action_lift(action, version, treated, holdout, confidence)
        for (action, version), (treated, holdout) in sorted(groups.items())
    ]
