"""Marketing webhook deliveries built and signed exactly as the providers build and sign them.

- SendGrid Event Webhook: a JSON array; `X-Twilio-Email-Event-Webhook-Signature` is a base64
  DER ECDSA P-256 signature over SHA-256 of the timestamp header + raw body.
- Mandrill: a form with `mandrill_events` (JSON array); `X-Mandrill-Signature` is base64
  HMAC-SHA1(key, URL + each POST parameter name and value, sorted by name).
- Shopify: one order per delivery; `X-Shopify-Hmac-Sha256` is base64 HMAC-SHA256(secret, body),
  `X-Shopify-Event-Id` names the event (the same on every retry).

Pure: secrets, URLs and the signing time are arguments. A delivery is (body bytes, headers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

SENDGRID_EVENTS = {"email.send": "processed", "email.open": "open", "email.click": "click"}
MANDRILL_EVENTS = {"email.send": "send", "email.open": "open", "email.click": "click"}


@dataclass(frozen=True)
class Delivery:
    provider: str
    body: bytes
    headers: dict[str, str]
    events: int


def _epoch(moment: str | datetime) -> int:
    at = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    # Whole seconds, rounded up: an outcome never reads as earlier than its decision.
    seconds = at.timestamp()
    return int(seconds) if seconds == int(seconds) else int(seconds) + 1


def sendgrid_item(event: dict[str, Any]) -> dict[str, Any]:
    context = event.get("context") or {}
    item: dict[str, Any] = {
        "email": event["customer_id"],
        "timestamp": _epoch(event["occurred_at"]),
        "event": SENDGRID_EVENTS[event["touchpoint"]],
        "sg_event_id": event["event_id"],
        "sg_message_id": context.get("message") or event["event_id"],
    }
    if context.get("campaign"):
        item["category"] = [context["campaign"]]
    # Custom arguments set when the message was sent come back on every event.
    for key in ("decision_id", "action_id"):
        if context.get(key):
            item[key] = context[key]
    if event["touchpoint"] == "email.click":
        item["url"] = "https://shop.example.vn/"
    return item


def mandrill_item(event: dict[str, Any]) -> dict[str, Any]:
    context = event.get("context") or {}
    metadata = {key: context[key] for key in ("decision_id", "action_id") if context.get(key)}
    msg: dict[str, Any] = {"email": event["customer_id"], "_id": event["event_id"],
                           "metadata": metadata, "subject": context.get("message", "")}
    if context.get("campaign"):
        msg["tags"] = [context["campaign"]]
    item: dict[str, Any] = {"event": MANDRILL_EVENTS[event["touchpoint"]],
                            "_id": event["event_id"], "ts": _epoch(event["occurred_at"]),
                            "msg": msg}
    if event["touchpoint"] == "email.click":
        item["url"] = "https://shop.example.vn/"
    return item


def sendgrid_delivery(events: list[dict[str, Any]], private_key_pem: str,
                      signed_at: datetime) -> Delivery:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the SendGrid signing key must be an EC private key")
    body = orjson.dumps([sendgrid_item(e) for e in events])
    timestamp = str(int(signed_at.timestamp()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return Delivery("sendgrid", body, {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }, len(events))


def mandrill_delivery(events: list[dict[str, Any]], key: str, url: str) -> Delivery:
    params = [("mandrill_events", orjson.dumps([mandrill_item(e) for e in events]).decode())]
    signed = url + "".join(name + value for name, value in sorted(params))
    signature = base64.b64encode(hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest())
    return Delivery("mandrill", urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Mandrill-Signature": signature.decode(),
    }, len(events))


def shopify_order(confirmation: dict[str, Any], value: float, currency: str) -> dict[str, Any]:
    order_id = (confirmation.get("properties") or {})["order_id"]
    return {
        "id": int(order_id.removeprefix("o-"), 16),
        "name": f"#{order_id}",
        "email": confirmation["customer_id"],
        "created_at": confirmation["occurred_at"],
        "updated_at": confirmation["occurred_at"],
        "total_price": f"{value:.2f}",
        "currency": currency,
        "financial_status": "paid",
        "line_items": [{"title": "item", "quantity": 1, "price": f"{value:.2f}"}],
    }


def shopify_delivery(confirmation: dict[str, Any], value: float, currency: str,
                     secret: str) -> Delivery:
    body = orjson.dumps(shopify_order(confirmation, value, currency))
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return Delivery("shopify", body, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Event-Id": confirmation["event_id"],
        "X-Shopify-Shop-Domain": "demo-shop.myshopify.com",
    }, 1)
