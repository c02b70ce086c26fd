"""Standard Webhooks signatures (github.com/standard-webhooks/standard-webhooks, spec 1.0).

Headers: `webhook-id` (the message id, the same on every retry), `webhook-timestamp` (Unix
seconds of this attempt) and `webhook-signature`: space-separated `v1,<base64>` entries, each
HMAC-SHA256 of `<id>.<timestamp>.<body>`. The secret is `whsec_` + base64 of 24-64 random bytes;
the HMAC key is the decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; raises ValueError on anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("the secret must start with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except binascii.Error as exc:
        raise ValueError("the secret after whsec_ must be base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError("the secret must decode to 24-64 bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body),
            "content-type": "application/json"}


def verify(secret: str, headers: dict[str, str], body: bytes, now: int,
           tolerance_s: int = 300) -> bool:
    """What a subscriber does; used by our tests and documented for subscribers."""
    message_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp", "")
    if not message_id or not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    expected = sign(secret, message_id, int(timestamp), body)
    return any(hmac.compare_digest(expected, given)
               for given in headers.get("webhook-signature", "").split())
