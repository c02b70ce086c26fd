"""SendGrid Event Webhook, signed with ECDSA P-256.

Signature (twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-
webhook-security-features): `X-Twilio-Email-Event-Webhook-Signature` is a base64 DER ECDSA
signature over SHA-256 of `X-Twilio-Email-Event-Webhook-Timestamp` + raw body, checked with the
verification key from SendGrid's mail settings (base64 DER SubjectPublicKeyInfo, or PEM).
SendGrid documents no window; we apply the shared timestamp tolerance against replays.

Events arrive in batches (a JSON array); each becomes one event keyed by `sg_event_id`.
Identity: the recipient e-mail, lower-cased.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.ingestion.webhooks.model import (
    DECISION_KEYS,
    DEFAULT_OPTIONS,
    Headers,
    MappedItem,
    MappingOptions,
    Provider,
    SignatureError,
    UnmappableError,
    Unmapped,
    check_age,
    context_from,
    event_time,
    from_unix,
    required_header,
    stable_event_id,
)
from shared.contact_identity import normalize_email

NAME = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TOUCHPOINTS = {
    "processed": "email.send",
    "delivered": "email.delivered",
    "deferred": "email.deferred",
    "dropped": "email.dropped",
    "bounce": "email.bounce",
    "open": "email.open",
    "click": "email.click",
    "spamreport": "email.spam_report",
    "unsubscribe": "email.unsubscribe",
    "group_unsubscribe": "email.unsubscribe",
    "group_resubscribe": "email.subscribe",
}
_KEPT = ("sg_message_id", "type", "bounce_classification", "reason", "status", "asm_group_id",
         "useragent", "ip", "response", "attempt")


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid shows the key as base64 DER; PEM is accepted too."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text.strip()))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not a valid SendGrid verification key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid verification key must be an EC (P-256) public key")
    return key


def verify(headers: Headers, raw_body: bytes, url: str, secret: Any, now: datetime,
           tolerance_s: float = 300) -> None:
    key = secret if isinstance(secret, ec.EllipticCurvePublicKey) else load_public_key(secret)
    given = required_header(headers, SIGNATURE_HEADER)
    timestamp = required_header(headers, TIMESTAMP_HEADER)
    if not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} must be seconds since the epoch")
    check_age(from_unix(int(timestamp)), now, tolerance_s, TIMESTAMP_HEADER)
    try:
        key.verify(base64.b64decode(given), timestamp.encode() + raw_body,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the request") from exc


def parse(headers: Headers, raw_body: bytes) -> Any:
    try:
        body = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise UnmappableError(f"body is not JSON: {exc}") from exc
    if not isinstance(body, list):
        raise UnmappableError("expected a JSON array of SendGrid events")
    return body


def _map_one(item: Any, options: MappingOptions) -> MappedItem:
    if not isinstance(item, dict):
        return Unmapped("SendGrid event is not an object", item)
    kind = item.get("event")
    touchpoint = TOUCHPOINTS.get(kind) if isinstance(kind, str) else None
    if touchpoint is None:
        return Unmapped(f"unsupported SendGrid event {kind!r}", item)
    email = normalize_email(item.get("email"))
    if email is None:
        return Unmapped("SendGrid event has no usable email", item)
    if not item.get("sg_event_id") or not isinstance(item.get("timestamp"), int | float):
        return Unmapped("SendGrid event lacks sg_event_id or timestamp", item)
    properties = {k: item[k] for k in _KEPT if isinstance(item.get(k), str | int | float)}
    properties["sendgrid_event"] = kind
    category = item.get("category")
    context = context_from(item, DECISION_KEYS)
    if isinstance(category, list) and category:
        category = category[0]
    if isinstance(category, str) and "campaign" not in context:
        context["campaign"] = category[:200]
    if kind == "click" and isinstance(item.get("url"), str):
        context["url"] = item["url"][:2048]
    event: dict[str, Any] = {
        "event_id": stable_event_id(NAME, item["sg_event_id"]),
        "customer_id": email,
        "occurred_at": event_time(item["timestamp"]),
        "touchpoint": touchpoint,
        "properties": {k: (v[:1000] if isinstance(v, str) else v) for k, v in properties.items()},
        "context": context,
    }
    return event


def to_events(payload: list, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
    return [_map_one(item, options) for item in payload]


PROVIDER = Provider(
    name=NAME, verify=verify, parse=parse, to_events=to_events,
    secret_settings=("webhook_sendgrid_public_key",),
    description="SendGrid signed Event Webhook (ECDSA P-256).",
)
