"""The public profile: stored state + timeline + catalog + `now` -> the JSON the API returns.

Pure. The journey (phase, step, cycle, changes) is inferred here from the time-ordered
timeline by the rules in `infer_journey`; counts per channel, phase and signal are derived from
the per-touchpoint sums through the catalog; decayed counts are brought forward to `now`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from services.profiles.fold import (
    DAY_MS,
    FoldedProfile,
    epoch_ms,
    from_epoch_ms,
    parse_count_key,
    parse_timeline_entry,
)
from shared import redis_keys as keys
from shared.features import profile_features
from shared.touchpoints import TouchpointCatalog

BUSINESS_INITIATED = frozenset({"outreach", "delivery_failure"})
NEW_CYCLE_STEPS = frozenset({"need_recognition", "research", "discovery"})
WINDOWS_DAYS = (7, 30, 90)


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


def rfm(orders: int, revenue: float, last_purchase_ms: float | None, now_ms: int) -> dict:
    """Recency, frequency and monetary scores (1-5, 0 without an order) and the segment."""
    if not orders or last_purchase_ms is None:
        return {"recency": 0, "frequency": 0, "monetary": 0, "segment": "prospect"}
    days = max(0.0, (now_ms - last_purchase_ms) / DAY_MS)
    # 5 within a week of the last purchase, 4 within 30 days, 3 within 90, 2 within 180.
    recency = 6 - _score(days, (7.0001, 30.0001, 90.0001, 180.0001))
    frequency = _score(orders, (2, 3, 5, 10))
    # Monetary on a log scale: currency-agnostic enough for a 1..5 score.
    monetary = _score(math.log10(max(0.0, revenue) + 1), (5, 5.7, 6.3, 7))
    return {"recency": recency, "frequency": frequency, "monetary": monetary,
            "segment": _rfm_segment(recency, frequency, monetary)}


def _iso(ms: float | None) -> str | None:
    return from_epoch_ms(ms).isoformat().replace("+00:00", "Z") if ms is not None else None


def timeline_items(profile: FoldedProfile, catalog: TouchpointCatalog) -> list[dict[str, Any]]:
    """Timeline entries, oldest first, with facets filled in from the catalog."""
    items = []
    for line in profile.timeline:
        raw = parse_timeline_entry(line)
        entry = catalog.get(raw["touchpoint"])
        item: dict[str, Any] = {
            "at": _iso(raw["ms"]),
            "touchpoint": raw["touchpoint"],
            "channel": raw.get("ch") or (entry.channel if entry else None),
            "phase": raw.get("ph") or (str(entry.phase) if entry else None),
            "journey_step": raw.get("st") or (str(entry.journey_step) if entry else None),
        }
        context = {name: raw[short] for short, name in (
            ("cp", "campaign"), ("nd", "need"), ("pl", "placement"), ("dc", "decision_id"),
            ("ac", "action_id")) if short in raw}
        if context:
            item["context"] = context
        for short, name in (("v", "value"), ("cu", "currency"), ("r", "rating"), ("nps", "nps"),
                            ("se", "sentiment")):
            if short in raw:
                item[name] = raw[short]
        item["_ms"] = raw["ms"]
        items.append(item)
    return items


def infer_journey(items: list[dict[str, Any]], catalog: TouchpointCatalog,
                  orders: int) -> dict[str, Any]:
    """Phase and step from the customer's own touchpoints, oldest first.

    - our outreach and failed deliveries of our messages are not the customer's moves: skipped;
    - a purchase moves the customer to post_purchase (step purchase);
    - post-purchase touchpoints keep post_purchase, with their step (after_sales, loyalty);
    - cart and checkout (step purchase) move the customer to the purchase phase;
    - other purchase-phase touchpoints (chat, log-in) move a pre-purchase customer to purchase;
    - a need, research or discovery touchpoint after a purchase starts a new cycle in
      pre_purchase; other pre-purchase touchpoints do not pull a customer back;
    - two or more orders make the customer loyal: in post_purchase the step reads loyalty.
    """
    phase: str | None = None
    step: str | None = None
    since: int | None = None
    cycle = 0
    changes: list[dict[str, Any]] = []
    for item in items:
        entry = catalog.get(item["touchpoint"])
        signals = entry.signals if entry else frozenset()
        if signals & BUSINESS_INITIATED:
            continue
        event_phase, event_step = item["phase"], item["journey_step"]
        new_phase, new_step = phase, step
        if "purchase" in signals:
            new_phase, new_step = "post_purchase", "purchase"
        elif event_phase == "post_purchase":
            new_phase, new_step = "post_purchase", event_step
        elif event_step == "purchase":
            new_phase, new_step = "purchase", event_step
        elif event_phase == "purchase":
            if phase in (None, "pre_purchase"):
                new_phase = "purchase"
            if new_phase == "purchase":
                new_step = event_step
        elif event_phase == "pre_purchase":
            if phase is None or phase == "pre_purchase":
                new_phase, new_step = "pre_purchase", event_step
            elif phase == "post_purchase" and event_step in NEW_CYCLE_STEPS:
                new_phase, new_step = "pre_purchase", event_step
                cycle += 1
        if new_phase != phase:
            since = item["_ms"]
            changes.append({"phase": new_phase, "step": new_step, "at": item["at"]})
        phase, step = new_phase, new_step
    loyal = orders >= 2
    if loyal and phase == "post_purchase":
        step = "loyalty"
    return {"phase": phase or "pre_purchase", "step": step, "since": _iso(since),
            "cycle": cycle, "loyal": loyal, "changes": changes[-10:]}


def _decayed_now(state: dict[str, Any], now_ms: int) -> dict[str, dict[str, float]]:
    if "dr" not in state:
        return {}
    elapsed = max(0, now_ms - state["dr"])
    out = {}
    for horizon, values in state.get("dc", {}).items():
        factor = math.exp(-elapsed / (float(horizon) * DAY_MS))
        out[horizon] = {name: round(value * factor, 6) for name, value in values.items()}
    return out


def _window_counts(items: list[dict[str, Any]], now_ms: int) -> dict[str, dict]:
    """Exact 7/30/90-day counts per touchpoint from the timeline (complete while the timeline
    still holds every event: `activity.windows_complete`)."""
    counts: dict[str, dict[str, int]] = {}
    for item in items:
        age = now_ms - item["_ms"]
        bucket = counts.setdefault(item["touchpoint"], {f"{d}d": 0 for d in WINDOWS_DAYS})
        for days in WINDOWS_DAYS:
            if 0 <= age <= days * DAY_MS:
                bucket[f"{days}d"] += 1
    return counts


def build_profile(
    subject: str, stored: FoldedProfile, catalog: TouchpointCatalog, now: datetime,
    with_features: bool = True,
) -> dict[str, Any]:
    """The public profile of one subject (see docs/profile.md for every field)."""
    state = stored.state
    now_ms = epoch_ms(now)
    sums, mx, mn, lw = (state.get(k, {}) for k in ("n", "mx", "mn", "lw"))
    items = timeline_items(stored, catalog)

    touchpoints: dict[str, int] = {}
    channels: dict[str, dict[str, Any]] = {}
    phases: dict[str, dict[str, Any]] = {}
    signals: dict[str, dict[str, Any]] = {}
    for key, count in sums.items():
        if not key.startswith("t:"):
            continue
        touchpoint, channel, phase = parse_count_key(key)
        entry = catalog.get(touchpoint)
        channel = channel or (entry.channel if entry else touchpoint.split(".", 1)[0])
        phase = phase or (str(entry.phase) if entry else "pre_purchase")
        touchpoints[touchpoint] = touchpoints.get(touchpoint, 0) + int(count)
        channels.setdefault(channel, {"total": 0})["total"] += int(count)
        phases.setdefault(phase, {"total": 0})["total"] += int(count)
        for signal in sorted(entry.signals) if entry else ():
            signals.setdefault(signal, {"total": 0})["total"] += int(count)
    decayed = _decayed_now(state, now_ms)
    d30 = decayed.get("30", {})
    for name, value in d30.items():
        kind, _, label = name.partition(":")
        target = {"c": channels, "p": phases, "s": signals}.get(kind)
        if target is not None:
            target.setdefault(label, {"total": 0})["30d"] = value
    for key, at in mx.items():
        if key.startswith("lc:"):
            channels.setdefault(key[3:], {"total": 0})["last_at"] = _iso(at)
    timeline_complete = len(items) >= sums.get("ev", 0)
    windows = _window_counts(items, now_ms)

    orders = int(sums.get("orders", 0))
    revenue = {k[3:]: round(v, 2) for k, v in sums.items() if k.startswith("rv:")}
    orders_by_currency = {k[3:]: int(v) for k, v in sums.items() if k.startswith("or:")}
    currency = max(orders_by_currency, key=lambda c: (orders_by_currency[c], c), default=None)
    average_order = (revenue.get(currency, 0.0) / orders_by_currency[currency]
                     if currency and orders_by_currency.get(currency) else None)
    last_resolved = mx.get("lr")
    open_bad = [{"touchpoint": tp, "at": _iso(ms)} for ms, tp in state.get("bx", [])
                if last_resolved is None or ms > last_resolved]
    ratings = int(sums.get("rn", 0))
    nps_count = int(sums.get("nn", 0))

    def last(name: str) -> dict[str, Any] | None:
        value = lw.get(name)
        return {"value": value[2], "at": _iso(value[0])} if value else None

    journey = infer_journey(items, catalog, orders)
    if not items and "lp" in mx:
        journey.update(phase="post_purchase", step="purchase", since=_iso(mx["lp"]))
    profile: dict[str, Any] = {
        "customer_id": keys.subject_id(subject) if not keys.is_anonymous(subject) else None,
        "anonymous_id": keys.subject_id(subject) if keys.is_anonymous(subject) else None,
        "anonymous_ids": list(state.get("al", [])),
        "first_seen": _iso(mn.get("fs")),
        "last_seen": _iso(mx.get("ls")),
        "as_of": _iso(now_ms),
        "journey": journey,
        "activity": {
            "events": int(sums.get("ev", 0)),
            "events_decayed": {f"{h}d": decayed.get(h, {}).get("*", 0.0) for h in ("7", "30",
                                                                                  "90")},
            "touchpoints": {tp: {"total": n, **windows.get(tp, {})}
                            for tp, n in sorted(touchpoints.items())},
            "windows_complete": timeline_complete,
            "channels": dict(sorted(channels.items())),
            "phases": dict(sorted(phases.items())),
            "signals": dict(sorted(signals.items())),
        },
        "value": {
            "orders": orders,
            "refunds": int(sums.get("refunds", 0)),
            "revenue": revenue,
            "currency": currency,
            "average_order_value": round(average_order, 2) if average_order is not None else None,
            "first_purchase_at": _iso(mn.get("fp")),
            "last_purchase_at": _iso(mx.get("lp")),
            "days_since_last_purchase": (round(max(0.0, (now_ms - mx["lp"]) / DAY_MS), 4)
                                         if "lp" in mx else None),
            "rfm": rfm(orders, revenue.get(currency, 0.0) if currency else 0.0, mx.get("lp"),
                       now_ms),
        },
        "satisfaction": {
            "ratings": ratings,
            "average_rating": round(sums["rs"] / ratings, 3) if ratings else None,
            "last_rating": last("rt"),
            "nps": {
                "responses": nps_count,
                "average": round(sums["ns"] / nps_count, 3) if nps_count else None,
                "promoters": int(sums.get("npp", 0)),
                "passives": int(sums.get("npn", 0)),
                "detractors": int(sums.get("npd", 0)),
                "last": last("np"),
            },
            "sentiment": {
                "positive": int(sums.get("se:positive", 0)),
                "neutral": int(sums.get("se:neutral", 0)),
                "negative": int(sums.get("se:negative", 0)),
                "last": last("se"),
            },
            "open_bad_experiences": open_bad,
            "last_bad_experience_at": _iso(mx.get("lb")),
            "last_resolution_at": _iso(last_resolved),
        },
        "consent": {k[3:]: {"status": v[2], "at": _iso(v[0])}
                    for k, v in sorted(lw.items()) if k.startswith("cs:")},
        "timezone": lw["tz"][2] if "tz" in lw else None,
        "outreach": {
            "contacts": [{"at": _iso(ms), "channel": ch, "action_id": action,
                          "decision_id": decision}
                         for ms, ch, action, decision in state.get("oc", [])],
            "by_channel": {k[3:]: {"count": int(v), "last_at": _iso(mx.get(k))}
                           for k, v in sorted(sums.items()) if k.startswith("oc:")},
            "by_action": {k[3:]: {"count": int(v), "last_at": _iso(mx.get(k))}
                          for k, v in sorted(sums.items()) if k.startswith("oa:")},
            "messages": {k[3:]: {"last_at": _iso(v)} for k, v in sorted(mx.items())
                         if k.startswith("lo:")},
        },
        "decision_outcomes": [{"at": _iso(ms), "decision_id": d, "action_id": a or None,
                               "touchpoint": tp} for ms, d, a, tp in state.get("do", [])],
        "timeline_length": len(items),
    }
    if with_features:
        profile["features"] = profile_features(state, now)
    return profile


def public_timeline(stored: FoldedProfile, catalog: TouchpointCatalog) -> list[dict[str, Any]]:
    """Newest first, without internal fields."""
    items = timeline_items(stored, catalog)
    for item in items:
        del item["_ms"]
    return list(reversed(items))
