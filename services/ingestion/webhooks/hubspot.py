"""HubSpot webhooks (contact and deal events), verified with the v3 request signature.

Signature (developers.hubspot.com/docs/api/webhooks/validating-requests): base64 of
HMAC-SHA256(client secret, method + URI + body + X-HubSpot-Request-Timestamp); timestamps
older than 5 minutes are rejected. The body is a JSON array of events; `eventId` stays the
same across HubSpot's retries (only `attemptNumber` changes), so it is our dedupe key.

Identity: HubSpot's contact events carry only the contact's record id, so the customer id is
`hubspot:<objectId>`. Deal events do not name a contact; they are recorded under the anonymous
id `hubspot-deal:<objectId>` (link deals to people with a workflow posting to /v1/events).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

import orjson

from services.ingestion.webhooks.model import (
    DEFAULT_OPTIONS,
    Headers,
    Ignored,
    MappedItem,
    MappingOptions,
    Provider,
    SignatureError,
    UnmappableError,
    Unmapped,
    check_age,
    event_time,
    from_unix,
    required_header,
    same,
    stable_event_id,
)

NAME = "hubspot"
TOLERANCE_S = 300
# HubSpot decodes these percent-escapes in the URI before signing.
_URI_DECODES = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
                "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def signed_uri(url: str) -> str:
    for escape, char in _URI_DECODES.items():
        url = url.replace(escape, char).replace(escape.lower(), char)
    return url


def signature(secret: str, method: str, url: str, raw_body: bytes, timestamp: str) -> str:
    message = method.upper().encode() + signed_uri(url).encode() + raw_body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify(headers: Headers, raw_body: bytes, url: str, secret: str, now: datetime,
           method: str = "POST", tolerance_s: float = TOLERANCE_S) -> None:
    given = required_header(headers, "X-HubSpot-Signature-v3")
    timestamp = required_header(headers, "X-HubSpot-Request-Timestamp")
    if not timestamp.isdigit():
        raise SignatureError("X-HubSpot-Request-Timestamp must be milliseconds since the epoch")
    check_age(from_unix(int(timestamp) / 1000), now, tolerance_s, "X-HubSpot-Request-Timestamp")
    if not same(signature(secret, method, url, raw_body, timestamp), given):
        raise SignatureError("X-HubSpot-Signature-v3 does not match the request")


def parse(headers: Headers, raw_body: bytes) -> Any:
    try:
        body = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise UnmappableError(f"body is not JSON: {exc}") from exc
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise UnmappableError("expected a JSON array of HubSpot events")
    return body


def _event(item: dict, touchpoint: str, options: MappingOptions) -> dict:
    object_id = item["objectId"]
    event: dict[str, Any] = {
        "event_id": stable_event_id(NAME, item.get("portalId", "0"), item["eventId"]),
        "occurred_at": event_time(item["occurredAt"], 1000),
        "touchpoint": touchpoint,
        "properties": {"hubspot_portal_id": item.get("portalId"),
                       "hubspot_subscription": item.get("subscriptionType")},
    }
    if item["subscriptionType"].startswith("contact."):
        event["customer_id"] = f"hubspot:{object_id}"
    else:
        event["anonymous_id"] = f"hubspot-deal:{object_id}"
        event["properties"]["deal_id"] = str(object_id)
    if item.get("propertyName"):
        event["properties"]["property_name"] = str(item["propertyName"])[:1000]
        event["properties"]["property_value"] = str(item.get("propertyValue", ""))[:1000]
    if item.get("changeSource"):
        event["properties"]["change_source"] = str(item["changeSource"])[:1000]
    return event


def _map_one(item: Any, options: MappingOptions) -> MappedItem:
    if not isinstance(item, dict):
        return Unmapped("HubSpot event is not an object", item)
    required = ("subscriptionType", "objectId", "eventId", "occurredAt")
    missing = [k for k in required if k not in item]
    if missing:
        return Unmapped(f"HubSpot event lacks {', '.join(missing)}", item)
    kind = item["subscriptionType"]
    prop, value = item.get("propertyName"), str(item.get("propertyValue", "")).lower()
    if kind == "contact.creation":
        return _event(item, "crm.contact_created", options)
    if kind == "contact.propertyChange":
        return _event(item, "crm.contact_updated", options)
    if kind == "deal.creation":
        return _event(item, "crm.deal_created", options)
    closing = prop == "dealstage" and value in ("closedwon", "closedlost")
    if kind == "deal.propertyChange" and closing:
        touchpoint = "crm.deal_won" if value == "closedwon" else "crm.deal_lost"
        return _event(item, touchpoint, options)
    if kind in ("deal.propertyChange", "contact.deletion", "deal.deletion",
                "contact.privacyDeletion", "contact.merge", "deal.merge",
                "contact.associationChange", "deal.associationChange", "contact.restore",
                "deal.restore"):
        return Ignored(f"{kind} ({prop or 'no property'}) is not a touchpoint")
    return Unmapped(f"unsupported HubSpot subscriptionType {kind!r}", item)


def to_events(payload: list, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
    return [_map_one(item, options) for item in payload]


PROVIDER = Provider(
    name=NAME, verify=verify, parse=parse, to_events=to_events,
    secret_settings=("webhook_hubspot_client_secret",),
    description="HubSpot contact and deal webhooks (X-HubSpot-Signature-v3).",
)
