"""Features of a customer profile, as the profile API shows them.

`profile_features(profile, now)` turns the public profile (the JSON of
`GET /v1/profiles/{customer_id}`, documented in docs/profile.md) into one flat dict of
numbers, strings and booleans: `features` in that JSON. Pure: `now` is an argument.

The recommender does not call it: it computes a smaller set of decision features from the
stored state (`services/recommender/profile_view.py`), logs them with every decision, and
trains on the logged ones, so its training and serving agree with each other but not with
this function. Names containing a dot carry a channel
(`consent.email`, `contacts_7d.zalo`); a vectorizer such as sklearn's `DictVectorizer` handles
them as they come.

"Never" reads as NEVER_DAYS in the `days_since_*` features (with a `has_*` flag beside it),
so models see a large, finite recency rather than a missing value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

FeatureValue = float | int | str | bool
NEVER_DAYS = 3650.0
DAY_S = 86_400.0
HORIZONS = {"7d": 7, "30d": 30, "90d": 90}


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _days_since(value: str | None, now: datetime) -> float:
    moment = _parse(value)
    if moment is None:
        return NEVER_DAYS
    return round(min(NEVER_DAYS, max(0.0, (now - moment).total_seconds() / DAY_S)), 4)


def _carry(value: float, as_of: datetime | None, now: datetime, days: int) -> float:
    """A decayed count read at `as_of`, brought forward to `now`."""
    if as_of is None or now <= as_of:
        return round(value, 4)
    return round(value * math.exp(-(now - as_of).total_seconds() / (days * DAY_S)), 4)


def _score(value: float, cuts: tuple[float, ...]) -> int:
    """1..5: one more for every threshold (`cuts`, ascending) reached."""
    return sum(value >= cut for cut in cuts) + 1


def _rfm_segment(recency: int, frequency: int, monetary: int) -> str:
    if frequency == 0:
        return "prospect"
    if recency >= 4 and frequency >= 4:
        return "champion"
    if frequency >= 3 and recency >= 3:
        return "loyal"
    if frequency >= 3:
        return "at_risk"
    if recency >= 4:
        return "new"
    if recency <= 2:
        return "hibernating"
    return "promising" if monetary >= 3 else "needs_attention"


def _activity(profile: Mapping[str, Any], now: datetime) -> dict[str, FeatureValue]:
    activity = profile.get("activity", {})
    as_of = _parse(profile.get("as_of"))
    out: dict[str, FeatureValue] = {"events_total": int(activity.get("events", 0))}
    for name, days in HORIZONS.items():
        decayed = activity.get("events_decayed", {}).get(name, 0.0)
        out[f"events_{name}"] = _carry(decayed, as_of, now, days)
    for group in ("phases", "signals", "channels"):
        for label, counts in activity.get(group, {}).items():
            out[f"{group[:-1]}_30d.{label}"] = _carry(counts.get("30d", 0.0), as_of, now, 30)
            out[f"{group[:-1]}_total.{label}"] = int(counts.get("total", 0))
            if group == "channels":
                out[f"days_since_channel.{label}"] = _days_since(counts.get("last_at"), now)
    return out


def _value(profile: Mapping[str, Any], now: datetime) -> dict[str, FeatureValue]:
    value = profile.get("value", {})
    orders = int(value.get("orders", 0))
    currency = value.get("currency")
    revenue = float(value.get("revenue", {}).get(currency, 0.0)) if currency else 0.0
    recency_days = _days_since(value.get("last_purchase_at"), now)
    # 5 within a week of the last purchase, 4 within 30 days, 3 within 90, 2 within 180.
    recency = 6 - _score(recency_days, (7.0001, 30.0001, 90.0001, 180.0001)) if orders else 0
    frequency = _score(orders, (2, 3, 5, 10)) if orders else 0
    # Monetary on a log scale: currency-agnostic enough for a 1..5 score.
    monetary = _score(math.log10(revenue + 1), (5, 5.7, 6.3, 7)) if orders else 0
    return {
        "orders": orders,
        "refunds": int(value.get("refunds", 0)),
        "revenue": round(revenue, 2),
        "average_order_value": float(value.get("average_order_value") or 0.0),
        "has_purchased": orders > 0,
        "days_since_last_purchase": recency_days,
        "days_since_first_purchase": _days_since(value.get("first_purchase_at"), now),
        "rfm_recency": recency,
        "rfm_frequency": frequency,
        "rfm_monetary": monetary,
        "rfm_segment": _rfm_segment(recency, frequency, monetary),
    }


def _satisfaction(profile: Mapping[str, Any], now: datetime) -> dict[str, FeatureValue]:
    sat = profile.get("satisfaction", {})
    nps = sat.get("nps", {})
    last_nps = (nps.get("last") or {}).get("value")
    category = ("none" if last_nps is None else "promoter" if last_nps >= 9
                else "passive" if last_nps >= 7 else "detractor")
    responses = int(nps.get("responses", 0))
    nps_score = ((nps.get("promoters", 0) - nps.get("detractors", 0)) * 100.0 / responses
                 if responses else 0.0)
    return {
        "ratings": int(sat.get("ratings", 0)),
        "average_rating": float(sat.get("average_rating") or 0.0),
        "last_rating": int((sat.get("last_rating") or {}).get("value") or 0),
        "has_rating": bool(sat.get("ratings")),
        "nps_last": int(last_nps) if last_nps is not None else -1,
        "nps_category": category,
        "nps_score": round(nps_score, 2),
        "sentiment_last": (sat.get("sentiment", {}).get("last") or {}).get("value") or "none",
        "negative_sentiments": int(sat.get("sentiment", {}).get("negative", 0)),
        "open_bad_experiences": len(sat.get("open_bad_experiences", [])),
        "days_since_bad_experience": _days_since(sat.get("last_bad_experience_at"), now),
    }


def _contact(profile: Mapping[str, Any], now: datetime) -> dict[str, FeatureValue]:
    out: dict[str, FeatureValue] = {}
    for channel, consent in profile.get("consent", {}).items():
        out[f"consent.{channel}"] = consent.get("status", "unknown")
        out[f"contactable.{channel}"] = consent.get("status") == "opt_in"
    outreach = profile.get("outreach", {})
    last_contact = None
    day, week = {}, {}
    for contact in outreach.get("contacts", []):
        age = _days_since(contact.get("at"), now)
        channel = contact.get("channel", "unknown")
        if age <= 1:
            day[channel] = day.get(channel, 0) + 1
        if age <= 7:
            week[channel] = week.get(channel, 0) + 1
        last_contact = contact.get("at") if last_contact is None else max(last_contact,
                                                                          contact.get("at"))
    for channel in outreach.get("by_channel", {}):
        out[f"contacts_24h.{channel}"] = day.get(channel, 0)
        out[f"contacts_7d.{channel}"] = week.get(channel, 0)
        out[f"days_since_contact.{channel}"] = _days_since(
            outreach["by_channel"][channel].get("last_at"), now)
    out["contacts_7d"] = sum(week.values())
    out["days_since_last_contact"] = _days_since(last_contact, now)
    out["decision_outcomes"] = len(profile.get("decision_outcomes", []))
    return out


def profile_features(profile: Mapping[str, Any], now: datetime) -> dict[str, FeatureValue]:
    """One flat dict of features from a public profile, as of `now` (timezone-aware)."""
    journey = profile.get("journey", {})
    features: dict[str, FeatureValue] = {
        "is_known": profile.get("customer_id") is not None,
        "anonymous_ids": len(profile.get("anonymous_ids", [])),
        "phase": journey.get("phase") or "pre_purchase",
        "journey_step": journey.get("step") or "none",
        "journey_cycle": int(journey.get("cycle", 0)),
        "is_loyal": bool(journey.get("loyal", False)),
        "days_in_phase": _days_since(journey.get("since"), now),
        "days_since_first_seen": _days_since(profile.get("first_seen"), now),
        "days_since_last_seen": _days_since(profile.get("last_seen"), now),
    }
    features.update(_activity(profile, now))
    features.update(_value(profile, now))
    features.update(_satisfaction(profile, now))
    features.update(_contact(profile, now))
    return features
