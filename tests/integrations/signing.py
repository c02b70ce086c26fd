"""Signing test requests exactly as each provider does, written from the providers' documents
(independently of the verification code under test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    source = f"{method}{uri}".encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key pair; the public half as SendGrid shows it (base64 DER)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode()


def sendgrid(private: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int) -> str:
    signed = private.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signed).decode()


def mandrill(key: str, url: str, params: dict[str, str]) -> str:
    signed = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def meta(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def zalo(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    return "mac=" + hashlib.sha256(app_id.encode() + body + timestamp.encode()
                                   + oa_secret_key.encode()).hexdigest()


def shopify(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()
