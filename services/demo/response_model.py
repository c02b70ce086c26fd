"""The hidden response model: how simulated customers answer the actions they receive.

The recommender never sees this table. It only sees what happens (opens, clicks, replies,
purchases, unsubscriptions), as events carrying the decision id, and has to learn from them.
Effects are heterogeneous on purpose, so the best action depends on the customer:

- an open bad experience: a service-recovery call-back works (55%), a voucher less (35%, more
  for price-sensitive customers); a promotion almost never works and often costs the
  subscriber (30% unsubscribe);
- after a purchase: a loyalty reward works for repeat buyers (45%), not for one-time buyers
  (5%); a review request works for happy customers (35%) and annoys unhappy ones; a
  cross-sell e-mail works for customers who read our e-mails (30%); a thank-you e-mail works
  for store shoppers (25%) and hardly for the rest (5%), far below what the cold-start prior
  assumes (30%); an unhappy customer answers a satisfaction survey (30%);
- before a purchase: a live-chat invitation helps researchers (16%), rarely others (2%); flash
  sales work for price-sensitive customers (25-30%); review digests for e-mail readers (20%).

Whatever is done, some customers buy anyway (organic purchases, 1-6% by history), holdout
customers included: that is the baseline lift is measured against.

Pure: the random generator and the decision time are arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from services.demo.population import Traits

PROMOTIONS = frozenset({"flash_sale_email", "flash_sale_zalo", "review_digest_email",
                        "cross_sell_email", "new_arrival_push", "winback_sms",
                        "retargeting_ad", "referral_invite", "review_request"})


def response_probability(action_id: str, t: Traits) -> float:
    """The true probability that the customer answers the action positively."""
    if action_id == "no_action":
        return 0.0
    if t.bad_experience_open:
        if action_id == "service_recovery_callback":
            return 0.55
        if action_id == "service_recovery_voucher":
            return 0.5 if t.price_sensitive else 0.35
        if action_id in PROMOTIONS:
            return 0.005
    table = {
        "loyalty_reward": 0.45 if t.orders >= 2 else 0.05,
        "review_request": 0.35 if t.happy else 0.01 if t.unhappy else 0.06,
        "referral_invite": 0.3 if t.happy and t.orders >= 2 else 0.02,
        "cross_sell_email": 0.3 if t.email_engaged else 0.03,
        "thank_you_warranty": 0.25 if t.store_shopper else 0.05,
        "satisfaction_survey": 0.3 if t.unhappy else 0.08,
        "live_chat_invite": 0.16 if t.researcher else 0.02,
        "flash_sale_email": 0.25 if t.price_sensitive else 0.02,
        "flash_sale_zalo": 0.3 if t.price_sensitive else 0.03,
        "review_digest_email": 0.2 if t.email_engaged or t.researcher else 0.02,
        "abandoned_cart_email": 0.15,
        "abandoned_cart_zalo": 0.2,
        "free_shipping_messenger": 0.2 if t.price_sensitive else 0.08,
        "retargeting_ad": 0.03,
        "new_arrival_push": 0.04,
        "winback_sms": 0.05,
        "service_recovery_callback": 0.1,
        "service_recovery_voucher": 0.1,
    }
    return table.get(action_id, 0.03)


def unsubscribe_probability(action_id: str, t: Traits) -> float:
    if action_id in PROMOTIONS and (t.bad_experience_open or t.unhappy):
        return 0.3
    return 0.0


def organic_purchase_probability(t: Traits) -> float:
    """Buying without being asked, in the days after a decision."""
    return min(0.06, 0.01 + 0.01 * t.orders + (0.01 if t.email_engaged else 0.0))


# The touchpoint that shows a positive answer, by channel, with its explicit outcome.
ANSWERS: dict[str, tuple[str, str]] = {
    "email": ("email.open", "opened"),
    "zalo": ("zalo.click", "clicked"),
    "messenger": ("messenger.postback", "clicked"),
    "chat": ("chat.message", "replied"),
    "hotline": ("hotline.call", "replied"),
    "push": ("push.open", "opened"),
    "ads": ("ads.click", "clicked"),
    "sms": ("web.visit", "clicked"),
}
SPECIAL_ANSWERS: dict[str, tuple[str, str]] = {
    "review_request": ("review.write", "replied"),
    "satisfaction_survey": ("survey.response", "replied"),
    "loyalty_reward": ("loyalty.redeem", "converted"),
}
UNSUBSCRIBE = {"email": ("email.unsubscribe", "email"), "zalo": ("zalo.unfollow", "zalo")}


@dataclass(frozen=True)
class Decided:
    """What the demo keeps of one recommendation answer."""

    decision_id: str
    customer_id: str
    action_id: str | None  # first action; None for the holdout or an empty answer
    channel: str | None
    holdout: bool
    decided_at: datetime


def _value(rng: np.random.Generator) -> int:
    return max(10_000, int(round(math.exp(rng.normal(13.0, 0.6)), -3)))


def respond(decided: Decided, traits: Traits, rng: np.random.Generator,
            event_prefix: str) -> list[dict[str, Any]]:
    """The events the customer produces after a decision (possibly none), with times after it.

    Every answer carries `context.decision_id`; an organic purchase carries none (the
    learning join credits it to the customer's latest decision, like any purchase).
    """
    events: list[dict[str, Any]] = []
    clock = decided.decided_at

    def emit(touchpoint: str, outcome: str | None, linked: bool, **fields: Any) -> None:
        nonlocal clock
        clock = clock + timedelta(seconds=float(rng.uniform(2, 45)))
        event: dict[str, Any] = {
            "event_id": f"{event_prefix}-{len(events)}",
            "customer_id": decided.customer_id,
            "occurred_at": clock.isoformat(timespec="milliseconds"),
            "touchpoint": touchpoint,
            "context": {"locale": traits.locale},
        }
        if linked:
            event["context"].update(decision_id=decided.decision_id,
                                    action_id=decided.action_id)
        if outcome:
            event["properties"] = {"outcome": outcome}
        event.update(fields)
        events.append(event)

    action = decided.action_id
    if action and action != "no_action" and decided.channel:
        if rng.random() < unsubscribe_probability(action, traits) and \
                decided.channel in UNSUBSCRIBE:
            touchpoint, channel = UNSUBSCRIBE[decided.channel]
            emit(touchpoint, "unsubscribed", True, consent={channel: "unsubscribe"},
                 sentiment="negative")
            return events
        if rng.random() < response_probability(action, traits):
            touchpoint, outcome = SPECIAL_ANSWERS.get(action) or ANSWERS.get(
                decided.channel, ("web.visit", "clicked"))
            extra: dict[str, Any] = {}
            if touchpoint in ("review.write", "survey.response"):
                extra = {"rating": 2 if traits.unhappy else 5}
            emit(touchpoint, outcome, True, **extra)
            if decided.channel == "email" and rng.random() < 0.5:
                emit("email.click", "clicked", True)
            if action.startswith("service_recovery"):
                emit("support.resolved", None, True)
            if rng.random() < 0.35:
                emit("web.purchase", "converted", True, value=_value(rng), currency="VND")
            return events
    if rng.random() < organic_purchase_probability(traits):
        emit("web.purchase", None, False, value=_value(rng), currency="VND")
    return events
