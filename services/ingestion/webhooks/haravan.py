"""Haravan order webhooks (Vietnamese commerce platform; orders follow Shopify's resource).

Signature (docs.haravan.com/docs/tutorials/webhooks/private-webhook/): `X-Haravan-Hmacsha256`
is base64 of HMAC-SHA256(webhook authentication secret, raw body), the same construction as
Shopify. The topic comes in `X-Haravan-Topic`. Haravan documents no delivery id header, so the
event id is the topic and order id (each of create, paid, fulfilled, cancelled happens once per
order) and a retry counts once. Mapping in `orders.py`.
"""

from __future__ import annotations

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
from services.ingestion.webhooks.shopify import signature

NAME = "haravan"
SIGNATURE_HEADER = "X-Haravan-Hmacsha256"


def verify(headers: Headers, raw_body: bytes, url: str, secret: str, now: datetime) -> None:
    given = required_header(headers, SIGNATURE_HEADER)
    if not same(signature(secret, raw_body), given.strip()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


def parse(headers: Headers, raw_body: bytes) -> Any:
    return parse_order(headers, raw_body, "X-Haravan-Topic", ())


def to_events(payload: dict, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
    return order_events(NAME, payload, options)


PROVIDER = Provider(
    name=NAME, verify=verify, parse=parse, to_events=to_events,
    secret_settings=("webhook_haravan_secret",),
    description="Haravan order webhooks (X-Haravan-Hmacsha256).",
)
