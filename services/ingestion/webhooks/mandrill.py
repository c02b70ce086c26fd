"""Mailchimp Transactional (Mandrill) message-event webhooks.

Signature (mailchimp.com/developer/transactional/guides/track-respond-activity-webhooks/
#authenticating-webhook-requests): `X-Mandrill-Signature` is base64 of HMAC-SHA1(webhook key,
webhook URL + every POST parameter's name and value, sorted by name). The scheme has no
timestamp; replays of an authentic body carry the same event ids and so count once.

The form field `mandrill_events` holds a JSON array (a batch); each item becomes one event.
Mandrill's `_id` names the message, not the event, so the event id is message id + event +
event time. Identity: the recipient e-mail (`msg.email`), lower-cased.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

import orjson

from services.ingestion.webhooks.forms import form_pairs
from services.ingestion.webhooks.model import (
    DECISION_KEYS,
    DEFAULT_OPTIONS,
    Headers,
    Ignored,
    MappedItem,
    MappingOptions,
    Provider,
    SignatureError,
    UnmappableError,
    Unmapped,
    context_from,
    event_time,
    required_header,
    same,
    stable_event_id,
)
from shared.contact_identity import normalize_email

NAME = "mandrill"
TOUCHPOINTS = {
    "send": "email.send",
    "delivered": "email.delivered",
    "deferral": "email.deferred",
    "hard_bounce": "email.bounce",
    "soft_bounce": "email.bounce",
    "open": "email.open",
    "click": "email.click",
    "spam": "email.spam_report",
    "unsub": "email.unsubscribe",
    "reject": "email.dropped",
}


def signature(key: str, url: str, params: list[tuple[str, str]]) -> str:
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(headers: Headers, raw_body: bytes, url: str, secret: str, now: datetime) -> None:
    given = required_header(headers, "X-Mandrill-Signature")
    try:
        params = form_pairs(raw_body)
    except UnmappableError as exc:
        raise SignatureError(str(exc)) from exc
    if not same(signature(secret, url, params), given):
        raise SignatureError("X-Mandrill-Signature does not match the URL and parameters "
                             "(check WEBHOOK_PUBLIC_BASE_URL when behind a proxy)")


def parse(headers: Headers, raw_body: bytes) -> Any:
    fields = dict(form_pairs(raw_body))
    if "mandrill_events" not in fields:
        raise UnmappableError("form field mandrill_events is missing")
    try:
        events = orjson.loads(fields["mandrill_events"])
    except orjson.JSONDecodeError as exc:
        raise UnmappableError(f"mandrill_events is not JSON: {exc}") from exc
    if not isinstance(events, list):
        raise UnmappableError("mandrill_events must be a JSON array")
    return events


def _map_one(item: Any, options: MappingOptions) -> MappedItem:
    if not isinstance(item, dict):
        return Unmapped("Mandrill event is not an object", item)
    if "type" in item and "event" not in item:
        return Ignored(f"Mandrill sync event {item.get('type')!r} is not a touchpoint")
    kind = item.get("event")
    touchpoint = TOUCHPOINTS.get(kind) if isinstance(kind, str) else None
    if touchpoint is None:
        return Unmapped(f"unsupported Mandrill event {kind!r}", item)
    msg = item.get("msg") if isinstance(item.get("msg"), dict) else {}
    email = normalize_email(msg.get("email"))
    if email is None:
        return Unmapped("Mandrill event has no usable msg.email", item)
    message_id = item.get("_id") or msg.get("_id")
    if not message_id or not isinstance(item.get("ts"), int | float):
        return Unmapped("Mandrill event lacks _id or ts", item)
    metadata = msg.get("metadata") if isinstance(msg.get("metadata"), dict) else {}
    context = context_from(metadata, DECISION_KEYS)
    tags = msg.get("tags")
    if isinstance(tags, list) and tags and isinstance(tags[0], str) and "campaign" not in context:
        context["campaign"] = tags[0][:200]
    if kind == "click" and isinstance(item.get("url"), str):
        context["url"] = item["url"][:2048]
    properties: dict[str, Any] = {"mandrill_event": kind, "message_id": str(message_id)}
    if kind.endswith("_bounce"):
        properties["bounce_type"] = kind.removesuffix("_bounce")
    for key in ("subject", "bounce_description", "diag", "state"):
        if isinstance(msg.get(key), str):
            properties[key] = msg[key][:1000]
    return {
        "event_id": stable_event_id(NAME, message_id, kind, item["ts"]),
        "customer_id": email,
        "occurred_at": event_time(item["ts"]),
        "touchpoint": touchpoint,
        "properties": properties,
        "context": context,
    }


def to_events(payload: list, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
    return [_map_one(item, options) for item in payload]


PROVIDER = Provider(
    name=NAME, verify=verify, parse=parse, to_events=to_events,
    secret_settings=("webhook_mandrill_key",),
    description="Mailchimp Transactional (Mandrill) message events (X-Mandrill-Signature).",
)
