"""The demo's customers: simulated journeys, the traits the hidden response model reads, and the
route each historical event takes into the system.

Pure: the simulator, the catalog and ``now`` are arguments. Customer ids are e-mail addresses,
the identity the e-mail and shop webhooks carry, so events from the API and from the providers
land on the same profile.

Routes: since the webhooks were subscribed (`webhooks_since`), e-mail activity of known customers
(sent, opened, clicked) arrives as e-mail provider deliveries (SendGrid for even customer
numbers, Mandrill for odd ones) and online orders as Shopify `orders/create` deliveries; what
happened before was imported, so it goes through `POST /v1/events` like everything else.
Subscriptions and unsubscriptions stay on the API: they carry the consent change itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.simulator.journeys import CustomerHistory, JourneySimulator
from shared.touchpoints import TouchpointCatalog

EMAIL_DOMAIN = "example.vn"
PROVIDER_EMAIL_TOUCHPOINTS = frozenset({"email.send", "email.open", "email.click"})
PHASES = ("pre_purchase", "purchase", "post_purchase")
PURCHASE_INTENT = frozenset({"web.add_to_cart", "web.checkout_start"})
BAD_EXPERIENCES = frozenset({"delivery.failed", "hotline.warranty_call", "support.complaint"})
INTENT_DAYS = 30


def email_of(customer_id: str) -> str:
    return f"{customer_id}@{EMAIL_DOMAIN}".lower()


@dataclass(frozen=True)
class Traits:
    """What a customer's history says about them; the hidden response model reads these, and
    the profile sees the same history, so a model can learn them."""

    phase: str
    orders: int
    store_shopper: bool
    email_engaged: bool
    price_sensitive: bool
    researcher: bool
    bad_experience_open: bool
    happy: bool
    unhappy: bool
    locale: str


@dataclass
class DemoCustomer:
    index: int
    customer_id: str
    persona: str
    traits: Traits
    api_events: list[dict[str, Any]] = field(default_factory=list)
    email_events: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)

    @property
    def email_provider(self) -> str:
        return "sendgrid" if self.index % 2 == 0 else "mandrill"

    @property
    def event_count(self) -> int:
        return len(self.api_events) + len(self.email_events) + len(self.orders)


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def traits_of(events: Sequence[dict[str, Any]], catalog: TouchpointCatalog,
              now: datetime) -> Traits:
    """The traits of one history, read the way the profile reads it."""
    orders = 0
    last_intent: datetime | None = None
    last_bad: datetime | None = None
    last_resolved: datetime | None = None
    ratings: list[int] = []
    seen: set[str] = set()
    product_views = 0
    price_clicks = 0
    locale = "vi"
    for event in events:
        touchpoint = event["touchpoint"]
        seen.add(touchpoint)
        at = _parse(event["occurred_at"])
        entry = catalog.get(touchpoint)
        if entry is not None and "purchase" in entry.signals:
            orders += 1
        if touchpoint in PURCHASE_INTENT:
            last_intent = at
        if touchpoint in BAD_EXPERIENCES:
            last_bad = at
        if touchpoint == "support.resolved":
            last_resolved = at
        if touchpoint == "web.product_view":
            product_views += 1
        if touchpoint in ("ads.click", "social.ad_click"):
            price_clicks += 1
        if isinstance(event.get("rating"), int):
            ratings.append(event["rating"])
        locale = str((event.get("context") or {}).get("locale", locale))
    if orders:
        phase = "post_purchase"
    elif last_intent is not None and now - last_intent <= timedelta(days=INTENT_DAYS):
        phase = "purchase"
    else:
        phase = "pre_purchase"
    bad_open = last_bad is not None and (last_resolved is None or last_resolved < last_bad)
    return Traits(
        phase=phase,
        orders=orders,
        store_shopper="store.purchase" in seen,
        email_engaged=bool(seen & {"email.open", "email.click"}),
        price_sensitive=price_clicks > 0,
        researcher=product_views >= 3,
        bad_experience_open=bad_open,
        happy=bool(ratings) and ratings[-1] >= 4,
        unhappy=bool(ratings) and ratings[-1] <= 3,
        locale="en" if locale.startswith("en") else "vi",
    )


def _with_email_identity(event: dict[str, Any], email: str) -> dict[str, Any]:
    if "customer_id" in event:
        event = {**event, "customer_id": email}
    return event


def customer_from(history: CustomerHistory, catalog: TouchpointCatalog, now: datetime,
                  webhooks_since: datetime | None = None) -> DemoCustomer:
    email = email_of(history.customer_id)
    events = [_with_email_identity(e, email) for e in history.events]
    customer = DemoCustomer(history.index, email, history.persona,
                            traits_of(events, catalog, now))
    for event in events:
        touchpoint = event["touchpoint"]
        live = "customer_id" in event and (
            webhooks_since is None or _parse(event["occurred_at"]) >= webhooks_since)
        if live and touchpoint in PROVIDER_EMAIL_TOUCHPOINTS:
            customer.email_events.append(event)
        elif live and touchpoint == "order.confirmation" and _online_order(events, event):
            customer.orders.append(event)
        else:
            customer.api_events.append(event)
    return customer


def _online_order(events: Iterable[dict[str, Any]], confirmation: dict[str, Any]) -> bool:
    order_id = (confirmation.get("properties") or {}).get("order_id")
    return order_id is not None and any(
        e["touchpoint"] == "web.purchase" and (e.get("properties") or {}).get("order_id")
        == order_id for e in events)


def order_value(customer: DemoCustomer, confirmation: dict[str, Any]) -> tuple[float, str]:
    """The order total the shop reports for an online order (its purchase event's value)."""
    order_id = (confirmation.get("properties") or {}).get("order_id")
    for event in customer.api_events:
        if event["touchpoint"] == "web.purchase" and \
                (event.get("properties") or {}).get("order_id") == order_id:
            return float(event.get("value") or 0), str(event.get("currency") or "VND")
    return 0.0, "VND"


def build_population(simulator: JourneySimulator, count: int, catalog: TouchpointCatalog,
                     now: datetime, webhooks_since: datetime | None = None
                     ) -> list[DemoCustomer]:
    return [customer_from(h, catalog, now, webhooks_since) for h in simulator.customers(count)]


def phase_counts(customers: Iterable[DemoCustomer]) -> dict[str, int]:
    counts = dict.fromkeys(PHASES, 0)
    for customer in customers:
        counts[customer.traits.phase] += 1
    return counts
