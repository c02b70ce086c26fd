"""Shopify order webhooks.

Signature (shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook):
`X-Shopify-Hmac-Sha256` is base64 of HMAC-SHA256(app secret, raw body). No timestamp is signed;
`X-Shopify-Event-Id` is the same on every retry of an event, so it is the event id and a replay
counts once. Mapping in `orders.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from services.ingestion.webhooks.model import (
    DEFAULT_OPTIONS,
    Headers,
    MappedItem,
    MappingOptions,
    Provider,
    SignatureError,
    required_header,
    same,
)
from services.ingestion.webhooks.orders import order_events, parse_order

NAME = "shopify"
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"


def signature(secret: str, raw_body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify(headers: Headers, raw_body: bytes, url: str, secret: str, now: datetime) -> None:
    given = required_header(headers, SIGNATURE_HEADER)
    if not same(signature(secret, raw_body), given.strip()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


def parse(headers: Headers, raw_body: bytes) -> Any:
    return parse_order(headers, raw_body, "X-Shopify-Topic",
                       ("X-Shopify-Event-Id", "X-Shopify-Webhook-Id"))


def to_events(payload: dict, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
    return order_events(NAME, payload, options)


PROVIDER = Provider(
    name=NAME, verify=verify, parse=parse, to_events=to_events,
    secret_settings=("webhook_shopify_secret",),
    description="Shopify order webhooks (X-Shopify-Hmac-Sha256).",
)
