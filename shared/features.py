"""Features of a customer: one flat dict from the stored profile state, as of `now`.

The one feature function of the system. The recommender calls it on every decision (and logs
the result with the decision, so training reads exactly what serving saw), audience segments
filter on it, and the profile API shows it as `features` in `GET /v1/profiles/{id}`.

Pure: the stored state (the unpacked profile value, see docs/redis-keys.md) and `now` are
arguments; an empty state is a customer never seen before. It reads one key, so a decision
costs one Redis round trip.

Phase: a customer with an order is post-purchase; one who added to cart or started a
checkout in the last 30 days is in the purchase phase; everyone else pre-purchase. A bad
experience is open while no resolution has been recorded after it. Days since something are
capped at MAX_DAYS, so "never" and "long ago" read the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

FeatureValue = float | int | str | bool
DAY_MS = 86_400_000
MAX_DAYS = 365.0
PURCHASE_INTENT_TOUCHPOINTS = ("web.add_to_cart", "web.checkout_start")
CONSENT_CHANNELS = ("email", "zalo", "sms", "messenger", "push", "ads")


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def days_since(now_ms: int, ms: Any) -> float:
    if not isinstance(ms, int | float):
        return MAX_DAYS
    return float(min(MAX_DAYS, max(0.0, (now_ms - ms) / DAY_MS)))


def infer_phase(state: Mapping[str, Any], now: datetime) -> str:
    sums = state.get("n") or {}
    if sums.get("orders", 0) > 0:
        return "post_purchase"
    intent = sum(sums.get(f"t:{tp}", 0) for tp in PURCHASE_INTENT_TOUCHPOINTS)
    last_seen = (state.get("mx") or {}).get("ls")
    if intent > 0 and days_since(epoch_ms(now), last_seen) <= 30:
        return "purchase"
    return "pre_purchase"


def open_bad_experiences(state: Mapping[str, Any]) -> tuple[str, ...]:
    resolved_at = (state.get("mx") or {}).get("lr", 0)
    return tuple(
        str(touchpoint) for ms, touchpoint in state.get("bx") or () if ms > resolved_at
    )


def consents(state: Mapping[str, Any]) -> dict[str, str]:
    return {
        name.removeprefix("cs:"): str(entry[2])
        for name, entry in (state.get("lw") or {}).items()
        if name.startswith("cs:")
    }


def profile_features(state: Mapping[str, Any], now: datetime) -> dict[str, FeatureValue]:
    """The features of a stored profile (numbers, strings, booleans) as of `now`."""
    now_ms = epoch_ms(now)
    sums = state.get("n") or {}
    maxima = state.get("mx") or {}
    decayed = (state.get("dc") or {}).get("30") or {}
    decay_age = max(0.0, now_ms - state.get("dr", now_ms))
    # Decayed counts are stored at reference time `dr`; bring them to `now`.
    factor = math.exp(-decay_age / (30 * DAY_MS)) if decayed else 0.0
    revenue = sum(v for k, v in sums.items() if k.startswith("rv:"))
    rated = sums.get("rn", 0)
    consent = consents(state)
    features: dict[str, FeatureValue] = {
        "known": bool(state),
        "events": float(sums.get("ev", 0)),
        "orders": float(sums.get("orders", 0)),
        "log_revenue": math.log1p(max(0.0, revenue)),
        "days_since_seen": days_since(now_ms, maxima.get("ls")),
        "days_since_purchase": days_since(now_ms, maxima.get("lp")),
        "engagement_30d": decayed.get("s:engagement", 0.0) * factor,
        "negative_30d": decayed.get("s:negative", 0.0) * factor,
        "contacts_total": float(sums.get("contacts", 0)),
        "avg_rating": (sums.get("rs", 0) / rated) if rated else 0.0,
        "bad_experience_open": bool(open_bad_experiences(state)),
        "phase": infer_phase(state, now),
    }
    for channel in CONSENT_CHANNELS:
        features[f"consent_{channel}"] = consent.get(channel) == "opt_in"
    return features
