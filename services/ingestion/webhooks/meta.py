"""Meta Messenger and Instagram messaging webhooks (messages, postbacks, reactions, reads).

Signature (developers.facebook.com/docs/messenger-platform/webhooks#validate-payloads):
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`. The scheme
has no timestamp; replays carry the same message ids and so count once. Subscribing sends a GET
with `hub.mode=subscribe`, `hub.verify_token` and `hub.challenge`; we answer the challenge when
the token matches ours.

Identity: Meta gives page-scoped ids only, so customers are `messenger:<PSID>` (Instagram:
`instagram:<IGSID>`); link them to CRM ids with an `account.identify` event. Messages the page
sent itself (`is_echo`) are recorded as `messenger.outreach` to the recipient.
"""

from __future__ import annotations

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
    event_time,
    required_header,
    same,
    stable_event_id,
)

NAME = "meta"
PLATFORMS = {"page": "messenger", "instagram": "instagram"}


def signature(app_secret: str, raw_body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify(headers: Headers, raw_body: bytes, url: str, secret: Any, now: datetime) -> None:
    app_secret = secret["webhook_meta_app_secret"] if isinstance(secret, dict) else secret
    given = required_header(headers, "X-Hub-Signature-256")
    if not same(signature(app_secret, raw_body), given.strip().lower()):
        raise SignatureError("X-Hub-Signature-256 does not match the body")


def handshake(query: dict[str, str], secret: Any) -> str:
    token = secret.get("webhook_meta_verify_token") if isinstance(secret, dict) else None
    if not token:
        raise SignatureError("set WEBHOOK_META_VERIFY_TOKEN to answer Meta's subscription check")
    if query.get("hub.mode") != "subscribe":
        raise SignatureError("hub.mode must be subscribe")
    if not same(token, query.get("hub.verify_token", "")):
        raise SignatureError("hub.verify_token does not match WEBHOOK_META_VERIFY_TOKEN")
    challenge = query.get("hub.challenge")
    if not challenge:
        raise SignatureError("hub.challenge is missing")
    return challenge


def parse(headers: Headers, raw_body: bytes) -> Any:
    try:
        body = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise UnmappableError(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
        raise UnmappableError("expected an object with an entry list")
    return body


def _map_messaging(item: Any, platform: str) -> MappedItem:
    if not isinstance(item, dict):
        return Unmapped("messaging item is not an object", item)
    sender = (item.get("sender") or {}).get("id")
    recipient = (item.get("recipient") or {}).get("id")
    timestamp = item.get("timestamp")
    if not sender or not isinstance(timestamp, int | float):
        return Unmapped("messaging item lacks sender.id or timestamp", item)
    customer, touchpoint, key = sender, None, None
    properties: dict[str, Any] = {"platform": platform}
    if isinstance(item.get("message"), dict):
        message = item["message"]
        key = ("message", message.get("mid"))
        if message.get("is_echo"):
            customer, touchpoint = recipient, "messenger.outreach"
        else:
            touchpoint = "messenger.message"
        if isinstance(message.get("text"), str):
            properties["text_length"] = len(message["text"])
        if isinstance(message.get("attachments"), list):
            properties["attachments"] = len(message["attachments"])
        if isinstance((message.get("quick_reply") or {}).get("payload"), str):
            properties["quick_reply"] = message["quick_reply"]["payload"][:1000]
    elif isinstance(item.get("postback"), dict):
        postback = item["postback"]
        touchpoint = "messenger.postback"
        key = ("postback", postback.get("mid") or f"{sender}-{timestamp}")
        for field in ("title", "payload"):
            if isinstance(postback.get(field), str):
                properties[field] = postback[field][:1000]
    elif isinstance(item.get("reaction"), dict):
        reaction = item["reaction"]
        touchpoint = "messenger.reaction"
        key = ("reaction", reaction.get("mid"), reaction.get("action"), timestamp)
        for field in ("reaction", "action"):
            if isinstance(reaction.get(field), str):
                properties[field] = reaction[field]
    elif isinstance(item.get("read"), dict):
        touchpoint = "messenger.read"
        key = ("read", sender, item["read"].get("watermark", timestamp))
    elif isinstance(item.get("delivery"), dict):
        return Ignored("delivery receipts are not customer touchpoints")
    if touchpoint is None or not customer or key is None or key[1] is None:
        return Unmapped("unsupported messaging item (expected message, postback, reaction "
                        "or read)", item)
    return {
        "event_id": stable_event_id(NAME, *key),
        "customer_id": f"{platform}:{customer}",
        "occurred_at": event_time(timestamp, 1000),
        "touchpoint": touchpoint,
        "properties": properties,
    }


def to_events(payload: dict, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
    platform = PLATFORMS.get(payload.get("object"))
    if platform is None:
        return [Unmapped(f"unsupported object {payload.get('object')!r}", payload)]
    items: list[MappedItem] = []
    for entry in payload["entry"]:
        messaging = entry.get("messaging") if isinstance(entry, dict) else None
        if not isinstance(messaging, list):
            items.append(Unmapped("entry has no messaging list (only messaging fields are "
                                  "mapped)", entry))
            continue
        items.extend(_map_messaging(item, platform) for item in messaging)
    return items


PROVIDER = Provider(
    name=NAME, verify=verify, parse=parse, to_events=to_events,
    secret_settings=("webhook_meta_app_secret", "webhook_meta_verify_token"),
    handshake=handshake,
    description="Meta Messenger and Instagram messaging (X-Hub-Signature-256, hub.challenge).",
)
