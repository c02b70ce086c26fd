"""Zalo Official Account webhooks (follow, unfollow, user_send_*, user_click_*, oa_send_*).

Signature: `X-ZEvent-Signature: mac=<hex SHA-256 of app id + raw JSON body + the body's
timestamp field + OA secret key>`. The OA secret key is the Official Account's key, not the app
secret. See Zalo's webhook overview (developers.zalo.me/docs/official-account/webhook) and the
walk-through at hainh.me/zalo-api-php-webhook-callback-official-account.html. The whole scheme
lives in `mac()` so a change on Zalo's side is a one-function change.

The timestamp sits inside the signed body, so it cannot be refreshed by a replayer; Zalo
retries failed deliveries for up to 12 hours, so the age limit is `WEBHOOK_ZALO_MAX_AGE_S`
(24 h by default) and replays inside it carry the same event ids, counted once.

Identity: `zalo:<user id>` (the follower id as the OA sees it).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, NamedTuple

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

NAME = "zalo"
MAX_AGE_S = 86400


class ZaloCredentials(NamedTuple):
    app_id: str
    oa_secret_key: str


def mac(app_id: str, raw_body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """Zalo's X-ZEvent-Signature value."""
    message = app_id.encode() + raw_body + timestamp.encode() + oa_secret_key.encode()
    return "mac=" + hashlib.sha256(message).hexdigest()


def _credentials(secret: Any) -> ZaloCredentials:
    if isinstance(secret, ZaloCredentials):
        return secret
    return ZaloCredentials(secret["webhook_zalo_app_id"], secret["webhook_zalo_oa_secret_key"])


def verify(headers: Headers, raw_body: bytes, url: str, secret: Any, now: datetime,
           max_age_s: float = MAX_AGE_S) -> None:
    credentials = _credentials(secret)
    given = required_header(headers, "X-ZEvent-Signature").strip()
    if not given.startswith("mac="):
        given = "mac=" + given
    try:
        timestamp = str(orjson.loads(raw_body).get("timestamp", ""))
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise SignatureError("body is not a JSON object with a timestamp") from exc
    if not timestamp.isdigit():
        raise SignatureError("the body's timestamp must be milliseconds since the epoch")
    expected = mac(credentials.app_id, raw_body, timestamp, credentials.oa_secret_key)
    if not same(expected, given.lower()):
        raise SignatureError("X-ZEvent-Signature does not match the body")
    check_age(from_unix(int(timestamp) / 1000), now, max_age_s, "the event timestamp")


def parse(headers: Headers, raw_body: bytes) -> Any:
    try:
        body = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise UnmappableError(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("event_name"), str):
        raise UnmappableError("expected an object with event_name")
    return body


def _user(payload: dict, *fields: str) -> str | None:
    for field in fields:
        node = payload.get(field)
        if isinstance(node, dict) and node.get("id"):
            return str(node["id"])
    return None


def to_events(payload: dict, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
    name = payload["event_name"]
    timestamp = str(payload.get("timestamp", ""))
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    properties: dict[str, Any] = {"zalo_event": name}
    if name in ("follow", "unfollow"):
        touchpoint, user = f"zalo.{name}", _user(payload, "follower", "sender")
        if isinstance(payload.get("source"), str):
            properties["follow_source"] = payload["source"][:1000]
    elif name.startswith("user_send_"):
        touchpoint, user = "zalo.message", _user(payload, "sender")
    elif name.startswith("user_click_"):
        touchpoint, user = "zalo.click", _user(payload, "sender")
    elif name.startswith("oa_send_"):
        touchpoint, user = "zalo.outreach", _user(payload, "recipient")
    elif name in ("user_received_message", "user_seen_message", "user_reacted_message",
                  "oa_reacted_message"):
        return [Ignored(f"{name} is a receipt, not a touchpoint")]
    else:
        return [Unmapped(f"unsupported Zalo event {name!r}", payload)]
    if not user or not timestamp.isdigit():
        return [Unmapped(f"Zalo {name} lacks a user id or timestamp", payload)]
    if isinstance(message.get("text"), str):
        properties["text_length"] = len(message["text"])
    if isinstance(payload.get("oa_id"), str | int):
        properties["oa_id"] = str(payload["oa_id"])
    key = message.get("msg_id") or f"{name}-{user}-{timestamp}"
    return [{
        "event_id": stable_event_id(NAME, key),
        "customer_id": f"zalo:{user}",
        "occurred_at": event_time(timestamp, 1000),
        "touchpoint": touchpoint,
        "properties": properties,
    }]


PROVIDER = Provider(
    name=NAME, verify=verify, parse=parse, to_events=to_events,
    secret_settings=("webhook_zalo_oa_secret_key", "webhook_zalo_app_id"),
    description="Zalo Official Account events (X-ZEvent-Signature).",
)
