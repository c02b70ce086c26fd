"""Simulated customer journeys across channels, deterministic by seed.

A simulated customer follows one persona through the phases of the purchase: seeing an ad or
hearing about the brand, researching on search, social media, reviews and the marketplace,
talking to staff or a chat agent, buying online, on the marketplace or in a store, then
delivery, warranty, surveys, reviews and loyalty care. Some personas run into a bad experience
(failed delivery, warranty problem, complaint) and some change their consent. Many customers
start as anonymous visitors and are identified later by a sign-up or log-in event that carries
both ids; some visitors are never identified.

Pure: no clock reads (the time window is an argument), no I/O. The events are plain dicts shaped
like `shared.events.TouchpointEvent` (JSON-ready: ISO times with a +07:00 offset), with ids from
the default touchpoint catalog. The same seed and customer index always give the same history,
whatever else is generated, so any slice of a population can be regenerated on its own.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

VIETNAM = timezone(timedelta(hours=7))

# Persona -> share of the population. Browsers never buy; loyal customers buy repeatedly;
# unhappy customers hit a bad experience after buying.
PERSONAS: dict[str, float] = {
    "browser": 0.30,
    "online_buyer": 0.22,
    "store_buyer": 0.14,
    "marketplace_buyer": 0.08,
    "loyal": 0.14,
    "unhappy": 0.12,
}

CAMPAIGNS = ("tet-flash-sale", "11-11-mega-sale", "back-to-school", "black-friday",
             "summer-clearance", "new-collection")
AD_PLACEMENTS = ("facebook-feed", "google-display", "youtube-preroll", "tiktok-feed",
                 "instagram-stories", "zalo-ads")
SEARCH_TERMS = ("ao-khoac", "giay-the-thao", "tui-xach", "dong-ho", "tai-nghe", "noi-chien")
CATEGORIES = ("fashion", "shoes", "bags", "watches", "electronics", "home")
DEVICES = (("mobile", 0.7), ("desktop", 0.25), ("tablet", 0.05))
STORES = ("hcm-q1", "hcm-q7", "hn-hoan-kiem", "dn-hai-chau")
MARKETPLACES = ("shopee", "lazada", "tiki")


@dataclass(frozen=True)
class CustomerHistory:
    """One simulated customer: ids, persona and events in the order they happened."""

    index: int
    customer_id: str
    anonymous_id: str | None
    persona: str
    events: list[dict[str, Any]]


@dataclass
class _Journey:
    """Builds one customer's events: a clock, the identity known so far, an event counter."""

    rng: random.Random
    prefix: str
    customer_id: str
    anonymous_id: str | None
    identified: bool
    clock: datetime
    end: datetime
    device: str
    locale: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def wait(self, low_s: float, high_s: float) -> None:
        # Log-uniform gaps: most steps follow within minutes, some after days.
        gap = low_s * (high_s / low_s) ** self.rng.random()
        self.clock = min(self.clock + timedelta(seconds=gap), self.end)

    def emit(self, touchpoint: str, **fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": f"{self.prefix}-{len(self.events)}",
            "occurred_at": self.clock.isoformat(timespec="milliseconds"),
            "touchpoint": touchpoint,
        }
        if self.identified:
            event["customer_id"] = self.customer_id
        else:
            event["anonymous_id"] = self.anonymous_id
        context = {"device": self.device, "locale": self.locale, **fields.pop("context", {})}
        event["context"] = {k: v for k, v in context.items() if v is not None}
        event.update({k: v for k, v in fields.items() if v is not None})
        self.events.append(event)
        return event

    def identify(self, touchpoint: str) -> None:
        """The moment a visitor becomes known: the event carries both ids."""
        if self.identified:
            return
        self.identified = True
        event = self.emit(touchpoint)
        if self.anonymous_id is not None:
            event["anonymous_id"] = self.anonymous_id

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def pick(self, options: tuple[str, ...]) -> str:
        return self.rng.choice(options)


class JourneySimulator:
    """Generates customer histories between `start` and `end` (both timezone-aware)."""

    def __init__(
        self,
        seed: int = 7,
        start: datetime | None = None,
        end: datetime | None = None,
        customer_prefix: str = "c",
        anonymous_share: float = 0.45,
        currency: str = "VND",
    ):
        if start is None or end is None:
            raise ValueError("start and end are required (the simulator never reads the clock)")
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if end <= start:
            raise ValueError("end must be after start")
        self.seed = seed
        self.start = start.astimezone(VIETNAM)
        self.end = end.astimezone(VIETNAM)
        self.customer_prefix = customer_prefix
        self.anonymous_share = anonymous_share
        self.currency = currency

    def customer_id(self, index: int) -> str:
        return f"{self.customer_prefix}-{index:07d}"

    def customer(self, index: int) -> CustomerHistory:
        """The history of customer number `index` (independent of every other customer)."""
        rng = random.Random(f"{self.seed}:{self.customer_prefix}:{index}")
        persona = rng.choices(list(PERSONAS), weights=list(PERSONAS.values()))[0]
        starts_anonymous = rng.random() < self.anonymous_share
        anonymous_id = f"anon-{rng.getrandbits(48):012x}" if starts_anonymous else None
        span = (self.end - self.start).total_seconds()
        # Leave room for the journey to unfold; a journey that reaches `end` stops there.
        offset = rng.random() * span * 0.8
        journey = _Journey(
            rng=rng,
            prefix=f"sim{self.seed}-{self.customer_prefix}{index}",
            customer_id=self.customer_id(index),
            anonymous_id=anonymous_id,
            identified=not starts_anonymous,
            clock=self.start + timedelta(seconds=offset),
            end=self.end,
            device=rng.choices([d for d, _ in DEVICES], weights=[w for _, w in DEVICES])[0],
            locale="vi-VN" if rng.random() < 0.85 else "en-US",
        )
        _PERSONA_SCRIPTS[persona](self, journey)
        return CustomerHistory(index, journey.customer_id, anonymous_id, persona, journey.events)

    def customers(self, count: int, first: int = 0) -> Iterator[CustomerHistory]:
        for index in range(first, first + count):
            yield self.customer(index)

    def events(self, count: int, first: int = 0) -> Iterator[dict[str, Any]]:
        """Every event of `count` customers, customer after customer."""
        for history in self.customers(count, first):
            yield from history.events

    def stream(self, count: int, first: int = 0) -> Iterator[dict[str, Any]]:
        """Every event of `count` customers in time order, as a live feed would deliver them."""
        # Each history is already in time order; ISO strings with one fixed offset sort in
        # time order, and the customer index breaks ties deterministically.
        histories = [
            [((event["occurred_at"], history.index, n), event)
             for n, event in enumerate(history.events)]
            for history in self.customers(count, first)
        ]
        for _, event in heapq.merge(*histories, key=lambda item: item[0]):
            yield event

    # --- journey pieces ------------------------------------------------------------------

    def _order_value(self, journey: _Journey, basket: float = 1.0) -> int:
        # Log-normal basket around 450,000 VND, rounded to 1,000 like real prices.
        value = journey.rng.lognormvariate(13.0, 0.7) * basket
        return max(10_000, int(round(value, -3)))

    def _awareness(self, journey: _Journey, campaign: str) -> None:
        roll = journey.rng.random()
        if roll < 0.4:
            placement = journey.pick(AD_PLACEMENTS)
            journey.emit("ads.impression", context={"campaign": campaign, "placement": placement,
                                                    "need": "awareness"})
            journey.wait(5, 3600)
            if journey.chance(0.6):
                journey.emit("ads.click", context={"campaign": campaign, "placement": placement,
                                                   "medium": "cpc", "need": "curiosity"})
        elif roll < 0.6:
            journey.emit("social.post_view", context={"campaign": campaign,
                                                      "placement": "facebook-fanpage"})
            if journey.chance(0.3):
                journey.wait(5, 600)
                journey.emit("social.comment", context={"need": "ask about the product"})
            if journey.chance(0.4):
                journey.wait(5, 600)
                journey.emit("social.ad_click", context={
                    "campaign": campaign, "placement": "facebook-feed", "need": "saving money"})
        elif roll < 0.75:
            journey.emit("referral.word_of_mouth", context={"need": "trusted advice"},
                         properties={"referrer_relation": journey.pick(("friend", "family",
                                                                         "colleague"))})
        elif roll < 0.85:
            journey.emit("video.view", context={"placement": journey.pick(("youtube", "tiktok"))})
        else:
            journey.emit(journey.pick(("print.billboard", "print.flyer")),
                         context={"campaign": campaign})

    def _research(self, journey: _Journey, category: str) -> None:
        journey.wait(60, 86_400 * 3)
        if journey.chance(0.6):
            term = journey.pick(SEARCH_TERMS)
            journey.emit("search.organic_visit", context={"need": "information",
                                                          "referrer": "https://www.google.com/"},
                         properties={"query": term})
            journey.wait(2, 60)
        journey.emit("web.visit", context={"url": "https://shop.example.vn/"})
        for _ in range(journey.rng.randint(1, 4)):
            journey.wait(10, 600)
            sku = f"{category[:3].upper()}-{journey.rng.randint(100, 999)}"
            journey.emit("web.product_view", context={"need": "compare products"},
                         properties={"sku": sku, "category": category})
        if journey.chance(0.5):
            journey.wait(30, 7200)
            journey.emit("review.read", context={"need": "social proof",
                                                 "placement": journey.pick(MARKETPLACES)})

    def _subscribe(self, journey: _Journey) -> None:
        if journey.chance(0.35):
            journey.wait(10, 3600)
            journey.emit("email.subscribe", consent={"email": "opt_in"},
                         context={"placement": "newsletter-footer"})
        if journey.chance(0.25):
            journey.wait(10, 3600)
            journey.emit("zalo.follow", consent={"zalo": "opt_in"},
                         context={"placement": "zalo-oa"})

    def _email_touch(self, journey: _Journey, campaign: str) -> None:
        journey.wait(3600, 86_400 * 7)
        journey.emit("email.send", context={"campaign": campaign, "message": f"{campaign}-mail"})
        journey.wait(60, 86_400)
        if journey.chance(0.45):
            journey.emit("email.open", context={"campaign": campaign})
            if journey.chance(0.35):
                journey.wait(5, 600)
                journey.emit("email.click", context={"campaign": campaign, "need": "offer"})
        elif journey.chance(0.05):
            journey.emit("email.unsubscribe", consent={"email": "unsubscribe"},
                         context={"campaign": campaign})

    def _online_order(self, journey: _Journey, category: str, campaign: str) -> str:
        journey.identify("web.login" if journey.chance(0.5) else "web.signup")
        journey.wait(10, 900)
        journey.emit("web.add_to_cart", properties={"category": category})
        if journey.chance(0.3):
            journey.wait(10, 900)
            journey.emit("chat.message", context={"need": "size and delivery questions"})
        journey.wait(10, 600)
        journey.emit("web.checkout_start")
        journey.wait(10, 300)
        order_id = f"o-{journey.rng.getrandbits(40):010x}"
        journey.emit("web.purchase", value=self._order_value(journey), currency=self.currency,
                     context={"campaign": campaign, "need": "buy"},
                     properties={"order_id": order_id, "category": category,
                                 "payment": journey.pick(("cod", "card", "momo", "zalopay"))})
        journey.wait(5, 120)
        journey.emit("order.confirmation", properties={"order_id": order_id})
        return order_id

    def _delivery(self, journey: _Journey, order_id: str, fails: bool) -> None:
        journey.wait(3600 * 4, 86_400)
        journey.emit("delivery.shipped", properties={"order_id": order_id})
        journey.wait(86_400 / 2, 86_400 * 4)
        if fails:
            journey.emit("delivery.failed", sentiment="negative",
                         properties={"order_id": order_id, "reason": "customer not reached"})
        else:
            journey.emit("delivery.delivered", properties={"order_id": order_id})

    def _feedback(self, journey: _Journey, happy: bool) -> None:
        if journey.chance(0.6):
            journey.wait(3600, 86_400 * 3)
            journey.emit("survey.invite", context={"message": "post-purchase-csat"})
            if journey.chance(0.5):
                journey.wait(600, 86_400)
                rating = journey.rng.choice((4, 5, 5)) if happy else journey.rng.choice((1, 2, 3))
                nps = journey.rng.randint(8, 10) if happy else journey.rng.randint(0, 6)
                journey.emit("survey.response", rating=rating, nps=nps,
                             sentiment="positive" if happy else "negative")
        if journey.chance(0.35):
            journey.wait(3600, 86_400 * 5)
            rating = journey.rng.choice((4, 5)) if happy else journey.rng.choice((1, 2))
            journey.emit("review.write", rating=rating,
                         sentiment="positive" if happy else "negative",
                         context={"placement": journey.pick(("website", "google-maps",
                                                             *MARKETPLACES))})

    def _loyalty(self, journey: _Journey) -> None:
        if journey.chance(0.5):
            journey.wait(86_400, 86_400 * 20)
            journey.emit("loyalty.reward", context={"message": "points-bonus"})
            if journey.chance(0.5):
                journey.wait(3600, 86_400 * 5)
                journey.emit("loyalty.redeem", properties={"points": journey.rng.randint(1, 20)
                                                           * 100})
        if journey.chance(0.3):
            journey.wait(3600, 86_400 * 10)
            journey.emit("referral.invite", context={"need": "share a good experience"})

    # --- personas --------------------------------------------------------------------------

    def _browser(self, journey: _Journey) -> None:
        campaign = journey.pick(CAMPAIGNS)
        self._awareness(journey, campaign)
        self._research(journey, journey.pick(CATEGORIES))
        if journey.chance(0.4):
            journey.identify(journey.pick(("web.signup", "account.identify")))
            self._subscribe(journey)
            if journey.chance(0.5):
                self._email_touch(journey, campaign)
        elif journey.chance(0.3):
            journey.wait(86_400, 86_400 * 14)
            journey.emit("ads.retargeting_impression", context={"campaign": campaign,
                                                                "placement": "google-display"})

    def _online_buyer(self, journey: _Journey) -> None:
        campaign = journey.pick(CAMPAIGNS)
        category = journey.pick(CATEGORIES)
        self._awareness(journey, campaign)
        self._research(journey, category)
        order_id = self._online_order(journey, category, campaign)
        self._subscribe(journey)
        self._delivery(journey, order_id, fails=False)
        self._feedback(journey, happy=True)

    def _store_buyer(self, journey: _Journey) -> None:
        campaign = journey.pick(CAMPAIGNS)
        self._awareness(journey, campaign)
        if journey.chance(0.5):
            self._research(journey, journey.pick(CATEGORIES))
        journey.wait(3600, 86_400 * 5)
        store = journey.pick(STORES)
        journey.identify("account.identify")  # the cashier looks up or creates the customer
        journey.emit("store.visit", context={"placement": store})
        journey.wait(60, 1200)
        journey.emit("store.staff_advice", context={"placement": store, "need": "expert advice"})
        journey.wait(60, 1200)
        journey.emit("store.purchase", value=self._order_value(journey, 1.5),
                     currency=self.currency, context={"placement": store},
                     properties={"payment": journey.pick(("cash", "card", "vnpay-qr"))})
        if journey.chance(0.6):
            journey.wait(60, 86_400 * 2)
            journey.emit("warranty.registration", properties={"months": 12})
        self._subscribe(journey)
        self._feedback(journey, happy=True)

    def _marketplace_buyer(self, journey: _Journey) -> None:
        market = journey.pick(MARKETPLACES)
        journey.identify("account.identify")
        journey.emit("marketplace.visit", context={"placement": market, "need": "best price"})
        journey.wait(30, 3600)
        journey.emit("review.read", context={"placement": market, "need": "social proof"})
        journey.wait(60, 86_400)
        journey.emit("marketplace.purchase", value=self._order_value(journey, 0.8),
                     currency=self.currency, context={"placement": market},
                     properties={"voucher": journey.chance(0.5)})
        journey.wait(86_400, 86_400 * 4)
        journey.emit("delivery.delivered", properties={"carrier": "ghn"})
        self._feedback(journey, happy=journey.chance(0.85))

    def _loyal(self, journey: _Journey) -> None:
        category = journey.pick(CATEGORIES)
        self._awareness(journey, journey.pick(CAMPAIGNS))
        self._research(journey, category)
        order_id = self._online_order(journey, category, journey.pick(CAMPAIGNS))
        self._subscribe(journey)
        self._delivery(journey, order_id, fails=False)
        self._feedback(journey, happy=True)
        for _ in range(journey.rng.randint(1, 3)):
            campaign = journey.pick(CAMPAIGNS)
            self._email_touch(journey, campaign)
            journey.wait(86_400, 86_400 * 20)
            if journey.chance(0.5):
                journey.emit("web.visit", context={"campaign": campaign})
                order_id = self._online_order(journey, journey.pick(CATEGORIES), campaign)
                self._delivery(journey, order_id, fails=False)
            else:
                store = journey.pick(STORES)
                journey.emit("store.purchase", value=self._order_value(journey),
                             currency=self.currency, context={"placement": store})
        self._loyalty(journey)

    def _unhappy(self, journey: _Journey) -> None:
        category = journey.pick(CATEGORIES)
        campaign = journey.pick(CAMPAIGNS)
        self._awareness(journey, campaign)
        self._research(journey, category)
        order_id = self._online_order(journey, category, campaign)
        problem = journey.rng.random()
        if problem < 0.4:
            self._delivery(journey, order_id, fails=True)
        else:
            self._delivery(journey, order_id, fails=False)
            journey.wait(86_400, 86_400 * 30)
            if problem < 0.75:
                journey.emit("hotline.warranty_call", sentiment="negative",
                             context={"need": "warranty help"},
                             properties={"order_id": order_id, "issue": "defect"})
            else:
                journey.emit("support.complaint", sentiment="negative",
                             context={"need": "complaint"}, properties={"order_id": order_id})
        resolved = journey.chance(0.55)
        if resolved:
            journey.wait(3600, 86_400 * 3)
            journey.emit("hotline.callback", context={"message": "service-recovery"})
            journey.wait(600, 86_400 * 2)
            journey.emit("support.resolved", properties={"order_id": order_id})
        self._feedback(journey, happy=resolved and journey.chance(0.5))
        if not resolved and journey.chance(0.4):
            journey.wait(86_400, 86_400 * 7)
            journey.emit("email.unsubscribe", consent={"email": "unsubscribe"})


_PERSONA_SCRIPTS = {
    "browser": JourneySimulator._browser,
    "online_buyer": JourneySimulator._online_buyer,
    "store_buyer": JourneySimulator._store_buyer,
    "marketplace_buyer": JourneySimulator._marketplace_buyer,
    "loyal": JourneySimulator._loyal,
    "unhappy": JourneySimulator._unhappy,
}
