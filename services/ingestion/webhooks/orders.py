"""Order webhooks shared by Shopify and Haravan (Haravan's order resource follows Shopify's).

Topics: orders/create -> order.confirmation, orders/paid -> order.paid, orders/fulfilled ->
delivery.shipped, orders/cancelled -> order.cancelled, and orders/updated carrying a new refund
-> order.refunded (the refund's own id is the event id, so later updates of a refunded order
do not count it again). Other order updates are acknowledged and ignored.

Identity: the order's e-mail, else its phone (E.164-ish), else `<provider>-customer:<id>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from services.ingestion.webhooks.model import (
    Headers,
    Ignored,
    MappedItem,
    MappingOptions,
    UnmappableError,
    Unmapped,
    header,
    stable_event_id,
)
from shared.contact_identity import first_identity

TOPICS = {
    "orders/create": ("order.confirmation", "created_at"),
    "orders/paid": ("order.paid", "updated_at"),
    "orders/fulfilled": ("delivery.shipped", "updated_at"),
    "orders/cancelled": ("order.cancelled", "cancelled_at"),
}


def parse_order(headers: Headers, raw_body: bytes, topic_header: str,
                id_headers: tuple[str, ...]) -> dict[str, Any]:
    try:
        order = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise UnmappableError(f"body is not JSON: {exc}") from exc
    if not isinstance(order, dict):
        raise UnmappableError("expected a JSON object")
    topic = header(headers, topic_header)
    if not topic:
        raise UnmappableError(f"missing {topic_header} header")
    delivery_id = next((value for name in id_headers if (value := header(headers, name))), None)
    return {"topic": topic.strip().lower(), "delivery_id": delivery_id, "order": order}


def _time(order: dict, *fields: str) -> str | None:
    for field in fields:
        value = order.get(field)
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
            except ValueError:
                continue
    return None


def _amount(value: Any) -> float | None:
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return None
    return amount if amount >= 0 else None


def _identity(provider: str, order: dict, options: MappingOptions) -> str | None:
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    billing = order.get("billing_address") or {}
    shipping = order.get("shipping_address") or {}
    found = first_identity(
        [order.get("email"), order.get("contact_email"), customer.get("email")],
        [order.get("phone"), customer.get("phone"),
         billing.get("phone") if isinstance(billing, dict) else None,
         shipping.get("phone") if isinstance(shipping, dict) else None],
        options.default_country_code,
    )
    if found is None and customer.get("id"):
        found = f"{provider}-customer:{customer['id']}"
    return found


def _latest_refund(order: dict) -> tuple[str, float | None, str | None] | None:
    refunds = [r for r in order.get("refunds") or [] if isinstance(r, dict) and r.get("id")]
    if not refunds:
        return None
    refund = max(refunds, key=lambda r: str(r.get("created_at", "")))
    amounts = [_amount(t.get("amount")) for t in refund.get("transactions") or []
               if isinstance(t, dict) and t.get("kind", "refund") == "refund"]
    total = sum(a for a in amounts if a is not None) if amounts else None
    return str(refund["id"]), total, refund.get("created_at")


def order_events(provider: str, payload: dict, options: MappingOptions) -> list[MappedItem]:
    topic, order = payload["topic"], payload["order"]
    order_id = order.get("id")
    if order_id is None:
        return [Unmapped("order has no id", order)]
    customer = _identity(provider, order, options)
    if customer is None:
        return [Unmapped("order names no customer (no email, phone or customer id)", order)]
    currency = order.get("currency") if isinstance(order.get("currency"), str) else None
    properties: dict[str, Any] = {"order_id": str(order_id), "topic": topic}
    for field in ("name", "order_number", "financial_status", "fulfillment_status", "gateway"):
        if isinstance(order.get(field), str | int) and order.get(field) != "":
            properties[field] = order[field] if isinstance(order[field], int) \
                else str(order[field])[:1000]
    if isinstance(order.get("line_items"), list):
        properties["items"] = len(order["line_items"])
    event: dict[str, Any] = {"customer_id": customer, "properties": properties}
    if topic in TOPICS:
        touchpoint, time_field = TOPICS[topic]
        value = _amount(order.get("total_price"))
        event_key = payload.get("delivery_id") or f"{topic.replace('/', '.')}-{order_id}"
        occurred_at = _time(order, time_field, "updated_at", "created_at")
    elif topic in ("orders/updated", "orders/refunded") and (refund := _latest_refund(order)):
        touchpoint = "order.refunded"
        refund_id, value, refund_time = refund
        properties["refund_id"] = refund_id
        event_key = f"refund-{refund_id}"
        occurred_at = _time({"t": refund_time}, "t") or _time(order, "updated_at")
    elif topic == "orders/updated":
        return [Ignored("order update without a new refund is not a touchpoint")]
    else:
        return [Unmapped(f"unsupported topic {topic!r}", payload)]
    if occurred_at is None:
        return [Unmapped("order has no usable timestamp", order)]
    event.update(event_id=stable_event_id(provider, event_key), touchpoint=touchpoint,
                 occurred_at=occurred_at)
    if value is not None and currency:
        event.update(value=value, currency=currency.upper())
    return [event]
