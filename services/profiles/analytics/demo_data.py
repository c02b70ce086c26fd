"""Synthetic customer journeys for the dashboard demo, the benchmark and browser tests.

Seeded and clock-free (`end_ms` is an argument): the same arguments give the same events.
Journeys open on awareness touchpoints, continue through research and contact, convert with
a probability that depends on the channels touched (so attribution has something to find),
and buyers go on to delivery, surveys with ratings, loyalty and repeat purchases. A share of
customers receives a recommendation; holdout customers get none, treated ones answer some.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from services.profiles.analytics.facts import DecisionFacts, EventFacts

DAY_MS = 86_400_000
OPENERS = ("ads.click", "social.ad_click", "search.organic_visit", "referral.word_of_mouth",
           "email.open", "zalo.follow", "video.view", "print.flyer")
MIDDLE = ("web.product_view", "email.click", "zalo.message", "chat.message", "review.read",
          "store.visit", "messenger.message", "web.add_to_cart", "push.open", "web.visit")
BUY_AT = ("web.purchase", "store.purchase", "marketplace.purchase")
AFTER = ("delivery.delivered", "survey.response", "review.write", "loyalty.redeem")
# How much each channel raises the chance to buy (the demo's ground truth).
CHANNEL_LIFT = {"zalo": 0.10, "chat": 0.12, "review": 0.06, "store": 0.15, "web": 0.03}
ACTIONS = ("zalo_reminder", "email_offer", "hotline_callback")
MODEL_VERSION = "demo-1"
FACETS = {  # touchpoint -> channel, phase, journey step (a copy of the catalog's facets)
    "ads.click": ("ads", "pre_purchase", "discovery"),
    "social.ad_click": ("social", "pre_purchase", "discovery"),
    "search.organic_visit": ("search", "pre_purchase", "research"),
    "referral.word_of_mouth": ("referral", "pre_purchase", "need_recognition"),
    "email.open": ("email", "pre_purchase", "discovery"),
    "zalo.follow": ("zalo", "pre_purchase", "contact"),
    "video.view": ("video", "pre_purchase", "discovery"),
    "print.flyer": ("print", "pre_purchase", "need_recognition"),
    "web.product_view": ("web", "pre_purchase", "research"),
    "email.click": ("email", "pre_purchase", "research"),
    "zalo.message": ("zalo", "purchase", "contact"),
    "zalo.click": ("zalo", "purchase", "contact"),
    "chat.message": ("chat", "purchase", "contact"),
    "review.read": ("review", "pre_purchase", "research"),
    "store.visit": ("store", "pre_purchase", "contact"),
    "messenger.message": ("messenger", "purchase", "contact"),
    "web.add_to_cart": ("web", "purchase", "purchase"),
    "push.open": ("push", "pre_purchase", "discovery"),
    "web.visit": ("web", "pre_purchase", "research"),
    "web.purchase": ("web", "purchase", "purchase"),
    "store.purchase": ("store", "purchase", "purchase"),
    "marketplace.purchase": ("marketplace", "purchase", "purchase"),
    "delivery.delivered": ("delivery", "post_purchase", "after_sales"),
    "survey.response": ("survey", "post_purchase", "after_sales"),
    "review.write": ("review", "post_purchase", "after_sales"),
    "loyalty.redeem": ("loyalty", "post_purchase", "loyalty"),
}
RESPONDS = {"ads.click", "social.ad_click", "email.open", "zalo.follow", "email.click",
            "zalo.message", "zalo.click", "chat.message", "messenger.message", "web.add_to_cart",
            "push.open", "survey.response", "review.write", "loyalty.redeem", *BUY_AT}


@dataclass(frozen=True)
class DemoData:
    events: list[EventFacts]
    decisions: list[DecisionFacts]


class _Builder:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.events: list[EventFacts] = []
        self.decisions: list[DecisionFacts] = []

    def event(self, customer: str, at: int, touchpoint: str, value: float = 0.0,
              rating: int | None = None, decision: str = "") -> None:
        channel, phase, step = FACETS[touchpoint]
        purchase = touchpoint in BUY_AT
        self.events.append(EventFacts(
            event_id=f"{customer}-{len(self.events)}", subject=customer, at_ms=at,
            day=datetime.fromtimestamp(at / 1000, UTC).date().isoformat(),
            touchpoint=touchpoint, channel=channel, phase=phase, journey_step=step,
            purchase=purchase, value=value if purchase else 0.0, rating=rating,
            decision_id=decision, responds=touchpoint in RESPONDS, touch=not purchase,
        ))

    def customer(self, index: int, start: int, end: int) -> None:
        rng, customer = self.rng, f"demo-{index}"
        at = start
        touched = [rng.choice(OPENERS)]
        self.event(customer, at, touched[0])
        for _ in range(rng.randint(0, 6)):
            at += int(rng.expovariate(1.0) * DAY_MS / 2) + 60_000
            touched.append(rng.choice(MIDDLE))
            self.event(customer, at, touched[-1])
        chance = 0.12 + sum(CHANNEL_LIFT.get(t.split(".")[0], 0) for t in set(touched))
        decision = ""
        if rng.random() < 0.25:
            decision = f"dec-{index}"
            holdout = rng.random() < 0.2
            action = rng.choice(ACTIONS)
            self.decisions.append(DecisionFacts(
                decision, customer, at + 1000,
                datetime.fromtimestamp((at + 1000) / 1000, UTC).date().isoformat(),
                action, MODEL_VERSION, holdout,
            ))
            if not holdout and rng.random() < 0.35 + 0.1 * ACTIONS.index(action):
                at += 3_600_000
                self.event(customer, at, "zalo.click", decision=decision)
                chance += 0.15
        purchases = 0
        while rng.random() < min(chance, 0.9) and at < end:
            at += int(rng.expovariate(1.0) * DAY_MS) + 60_000
            self.event(customer, at, rng.choice(BUY_AT), value=round(rng.lognormvariate(13, 0.6)))
            purchases += 1
            at += DAY_MS
            self.event(customer, at, "delivery.delivered")
            if rng.random() < 0.5:
                at += DAY_MS // 2
                self.event(customer, at, "survey.response", rating=rng.choice((2, 3, 4, 4, 5, 5)))
            if purchases >= 1 and rng.random() < 0.3:
                at += 3 * DAY_MS
                self.event(customer, at, "loyalty.redeem")
            chance *= 0.5


def demo_data(n_events: int, end_ms: int, days: int = 90, seed: int = 7) -> DemoData:
    """About `n_events` events in the `days` before `end_ms`."""
    builder = _Builder(random.Random(seed))
    index = 0
    start_span = (days - 14) * DAY_MS
    while len(builder.events) < n_events:
        start = end_ms - days * DAY_MS + int(builder.rng.random() * start_span)
        builder.customer(index, start, end_ms)
        index += 1
    # Journeys that run past the end stop there: nothing happens in the future.
    return DemoData(
        [e for e in builder.events if e.at_ms <= end_ms],
        [d for d in builder.decisions if d.at_ms <= end_ms],
    )


def batches(items: list, size: int) -> Iterator[list]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]
