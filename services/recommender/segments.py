"""Audience segments: which stored profiles a batch of decisions is for.

Pure: a segment is a set of conditions on a profile's features
(`shared.features.profile_features`: what a decision reads, and the `features` of the profile
API); a profile is in the segment when it meets all of them. Conditions left out do not filter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.features import CONSENT_CHANNELS, MAX_DAYS, profile_features

Phase = Literal["pre_purchase", "purchase", "post_purchase"]
Channel = Literal[CONSENT_CHANNELS]  # type: ignore[valid-type]


def _days(description: str | None = None) -> Any:
    return Field(None, gt=0, le=MAX_DAYS, description=description)


class AudienceSegment(BaseModel):
    """Conditions on a customer's stored profile, all of which must hold."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"phase": ["post_purchase"], "min_orders": 2, "seen_within_days": 30,
         "opted_in": ["email"], "bad_experience_open": False}]})

    phase: list[Phase] | None = Field(None, min_length=1, description="Journey phase, "
                                      "inferred from the profile as for a decision.")
    min_orders: int | None = Field(None, ge=0)
    max_orders: int | None = Field(None, ge=0)
    min_revenue: float | None = Field(None, ge=0, description="Lifetime revenue, in the "
                                      "currency the orders were recorded in.")
    seen_within_days: float | None = _days("Any touchpoint in the last this many days.")
    not_seen_within_days: float | None = _days("Lapsed: no touchpoint for this long.")
    purchased_within_days: float | None = _days("An order in the last this many days.")
    not_purchased_within_days: float | None = _days(
        "No order for this long (customers without orders included).")
    opted_in: list[Channel] | None = Field(None, min_length=1, description="Channels the "
                                           "customer has opted in to (all of them).")
    bad_experience_open: bool | None = None

    def matches(self, state: Mapping[str, Any], now: datetime) -> bool:
        return matches(self, profile_features(state, now))


def matches(segment: AudienceSegment, features: Mapping[str, Any]) -> bool:
    """Whether a profile's features meet every condition of the segment."""
    orders = features["orders"]
    checks = (
        segment.phase is None or features["phase"] in segment.phase,
        segment.min_orders is None or orders >= segment.min_orders,
        segment.max_orders is None or orders <= segment.max_orders,
        segment.min_revenue is None
        or math.expm1(features["log_revenue"]) >= segment.min_revenue - 1e-6,
        segment.seen_within_days is None
        or features["days_since_seen"] <= segment.seen_within_days,
        segment.not_seen_within_days is None
        or features["days_since_seen"] >= segment.not_seen_within_days,
        segment.purchased_within_days is None
        or (orders > 0 and features["days_since_purchase"] <= segment.purchased_within_days),
        segment.not_purchased_within_days is None
        or orders == 0 or features["days_since_purchase"] >= segment.not_purchased_within_days,
        segment.opted_in is None
        or all(features[f"consent_{channel}"] for channel in segment.opted_in),
        segment.bad_experience_open is None
        or features["bad_experience_open"] == segment.bad_experience_open,
    )
    return all(checks)


__all__ = ["AudienceSegment", "matches"]
