"""What the decision pipeline reads from a stored profile: a contact-policy snapshot and features.

Pure: the stored state (the unpacked profile value, see `docs/redis-keys.md`), the request
context and ``now`` are arguments. An empty state is a customer never seen before.

Phase: the request context may name it (``phase``, ``journey_step``), since the CRM often
knows best; otherwise a customer with an order is post-purchase, one who added to cart or
started a checkout in the last 30 days is in the purchase phase, everyone else pre-purchase.
A bad experience is open while no resolution has been recorded after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.recommender.eligibility import DEFAULT_TIMEZONE, Contact, ProfileSnapshot
from shared.actions import JOURNEY_STEPS, PHASES

DAY_MS = 86_400_000
PURCHASE_INTENT_TOUCHPOINTS = ("web.add_to_cart", "web.checkout_start")
# Days-since features are capped so that "never" and "long ago" read the same.
MAX_DAYS = 365.0
CONSENT_CHANNELS = ("email", "zalo", "sms", "messenger", "push", "ads")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _lww_value(state: Mapping[str, Any], name: str) -> Any:
    entry = (state.get("lw") or {}).get(name)
    return entry[2] if entry else None


def _days_since(now_ms: int, ms: Any) -> float:
    if not isinstance(ms, int | float):
        return MAX_DAYS
    return float(min(MAX_DAYS, max(0.0, (now_ms - ms) / DAY_MS)))


def infer_phase(state: Mapping[str, Any], now: datetime) -> str:
    sums = state.get("n") or {}
    if sums.get("orders", 0) > 0:
        return "post_purchase"
    timeline_intent = sum(sums.get(f"t:{tp}", 0) for tp in PURCHASE_INTENT_TOUCHPOINTS)
    last_seen = (state.get("mx") or {}).get("ls")
    if timeline_intent > 0 and _days_since(_ms(now), last_seen) <= 30:
        return "purchase"
    return "pre_purchase"


def open_bad_experiences(state: Mapping[str, Any]) -> tuple[str, ...]:
    resolved_at = (state.get("mx") or {}).get("lr", 0)
    return tuple(
        str(touchpoint) for ms, touchpoint in state.get("bx") or () if ms > resolved_at
    )


def contacts(state: Mapping[str, Any]) -> tuple[Contact, ...]:
    out = []
    for entry in state.get("oc") or ():
        ms, channel, action_id = entry[0], entry[1], entry[2]
        out.append(Contact(str(channel), str(action_id), datetime.fromtimestamp(ms / 1000, UTC)))
    return tuple(out)


def consents(state: Mapping[str, Any]) -> dict[str, str]:
    return {
        name.removeprefix("cs:"): str(entry[2])
        for name, entry in (state.get("lw") or {}).items()
        if name.startswith("cs:")
    }


def snapshot(
    state: Mapping[str, Any], context: Mapping[str, Any], now: datetime
) -> ProfileSnapshot:
    """The eligibility view of a customer; request context overrides phase, step, time zone."""
    phase = context.get("phase")
    if phase not in PHASES:
        phase = infer_phase(state, now)
    step = context.get("journey_step")
    timezone = context.get("timezone") or _lww_value(state, "tz") or DEFAULT_TIMEZONE
    return ProfileSnapshot(
        phase=str(phase),
        journey_step=step if step in JOURNEY_STEPS else None,
        consent=consents(state),
        open_bad_experiences=open_bad_experiences(state),
        contacts=contacts(state),
        timezone=str(timezone),
    )


def profile_features(state: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Flat features of a stored profile (numbers, strings, booleans), as training sees them."""
    now_ms = _ms(now)
    sums = state.get("n") or {}
    maxima = state.get("mx") or {}
    decayed = (state.get("dc") or {}).get("30") or {}
    decay_age = max(0.0, now_ms - state.get("dr", now_ms))
    # Decayed counts are stored at reference time `dr`; bring them to `now`.
    factor = math.exp(-decay_age / (30 * DAY_MS)) if decayed else 0.0
    revenue = sum(v for k, v in sums.items() if k.startswith("rv:"))
    rated = sums.get("rn", 0)
    consent = consents(state)
    features: dict[str, Any] = {
        "known": bool(state),
        "events": float(sums.get("ev", 0)),
        "orders": float(sums.get("orders", 0)),
        "log_revenue": math.log1p(max(0.0, revenue)),
        "days_since_seen": _days_since(now_ms, maxima.get("ls")),
        "days_since_purchase": _days_since(now_ms, maxima.get("lp")),
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
