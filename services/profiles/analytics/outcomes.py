"""Recommendation lift from running sums, the form the aggregates keep.

`lift.action_lift` takes one outcome per decision; the aggregates keep per action, model
version and group only counts and sums (decisions, responses, revenue, sum of squared revenue
per decision). The same intervals follow from those sums; a test checks both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.profiles.analytics.lift import (
    ActionLift,
    GroupResult,
    RevenueMoments,
    newcombe_difference_interval,
    welch_difference_interval,
)


@dataclass(frozen=True, slots=True)
class GroupSums:
    customers: int
    responses: int
    revenue: float
    revenue_squares: float  # sum over decisions of (revenue of that decision)^2

    def result(self) -> GroupResult:
        n = self.customers
        return GroupResult(
            customers=n,
            responses=self.responses,
            revenue=self.revenue,
            response_rate=self.responses / n if n else None,
            revenue_per_customer=self.revenue / n if n else None,
        )

    def moments(self) -> RevenueMoments:
        return RevenueMoments.from_sums(self.customers, self.revenue, self.revenue_squares)


def lift_from_sums(
    action: str, model_version: str, treated: GroupSums, holdout: GroupSums,
    confidence: float = 0.95,
) -> ActionLift:
    t, h = treated.result(), holdout.result()
    if not t.customers or not h.customers:
        return ActionLift(action, model_version, t, h, None, None, None, None, None)
    # Responses can exceed decisions only through inconsistent input; clamp for the interval.
    t_resp, h_resp = min(t.responses, t.customers), min(h.responses, h.customers)
    t_rate, h_rate = t_resp / t.customers, h_resp / h.customers
    lift = t_rate - h_rate
    return ActionLift(
        action=action,
        model_version=model_version,
        treated=t,
        holdout=h,
        response_lift=lift,
        response_lift_interval=newcombe_difference_interval(
            t_resp, t.customers, h_resp, h.customers, confidence
        ),
        relative_response_lift=lift / h_rate if h_rate else None,
        revenue_lift=t.revenue / t.customers - h.revenue / h.customers,
        revenue_lift_interval=welch_difference_interval(
            treated.moments(), holdout.moments(), confidence
        ),
    )
