"""Mailchimp Marketing audience webhooks (subscribe, unsubscribe, profile, upemail, cleaned,
campaign).

Mailchimp does not sign these (mailchimp.com/developer/marketing/guides/sync-audience-data-
webhooks/): the webhook URL carries a secret `token` query parameter, compared in constant time,
and Mailchimp validates the URL with a GET before saving it. Bodies are form-encoded
(`type=subscribe&fired_at=...&data[email]=...`). There is no delivery id: the event id is a hash
of type, time, list and member, identical on every retry of the same delivery. `fired_at` has no
zone in the payload and is read as UTC. Identity: the member's e-mail, lower-cased.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from services.ingestion.webhooks.forms import nested_form
from services.ingestion.webhooks.model import (
    DEFAULT_OPTIONS,
    Headers,
    MappedItem,
    MappingOptions,
    Provider,
    SignatureError,
    UnmappableError,
    Unmapped,
    same,
)
from shared.contact_identity import normalize_email

NAME = "mailchimp"
TOUCHPOINTS = {
    "subscribe": "email.subscribe",
    "unsubscribe": "email.unsubscribe",
    "profile": "email.profile_update",
    "upemail": "email.profile_update",
    "cleaned": "email.cleaned",
}


def verify(headers: Headers, raw_body: bytes, url: str, secret: str, now: datetime) -> None:
    tokens = parse_qs(urlsplit(url).query).get("token", [])
    if not tokens:
        raise SignatureError("missing token query parameter in the webhook URL")
    if not same(secret, tokens[0]):
        raise SignatureError("the token query parameter is wrong")


def parse(headers: Headers, raw_body: bytes) -> Any:
    body = nested_form(raw_body)
    if not isinstance(body.get("type"), str) or not isinstance(body.get("data"), dict):
        raise UnmappableError("Mailchimp webhook needs form fields type and data[...]")
    return body


def _fired_at(text: Any) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def to_events(payload: dict, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
    kind, data = payload["type"], payload["data"]
    touchpoint = TOUCHPOINTS.get(kind)
    if touchpoint is None:
        reason = ("Mailchimp campaign events report a send to a whole audience and name no "
                  "customer" if kind == "campaign" else f"unsupported Mailchimp type {kind!r}")
        return [Unmapped(reason, payload)]
    email_field = "new_email" if kind == "upemail" else "email"
    email = normalize_email(data.get(email_field))
    if email is None:
        return [Unmapped(f"Mailchimp {kind} has no usable data[{email_field}]", payload)]
    fired_at = _fired_at(payload.get("fired_at"))
    if fired_at is None:
        return [Unmapped("fired_at must read YYYY-MM-DD HH:MM:SS", payload)]
    list_id = str(data.get("list_id", ""))
    member = data.get("id") or email
    digest = hashlib.sha256(
        f"{kind}|{payload.get('fired_at')}|{list_id}|{member}|{email}".encode()).hexdigest()[:40]
    properties: dict[str, Any] = {"mailchimp_type": kind, "list_id": list_id[:1000]}
    for key in ("reason", "action", "old_email", "campaign_id"):
        if isinstance(data.get(key), str):
            properties[key] = data[key][:1000]
    context = {"campaign": data["campaign_id"][:200]} if data.get("campaign_id") else {}
    return [{
        "event_id": f"{NAME}:{digest}",
        "customer_id": email,
        "occurred_at": fired_at.isoformat(),
        "touchpoint": touchpoint,
        "properties": properties,
        "context": context,
    }]


def handshake(query: dict[str, str], secret: Any) -> str:
    """Mailchimp's URL validation GET: any 200 will do."""
    return "ok"


PROVIDER = Provider(
    name=NAME, verify=verify, parse=parse, to_events=to_events,
    secret_settings=("webhook_mailchimp_token",), handshake=handshake,
    description="Mailchimp Marketing audience webhooks (secret token in the URL).",
)
