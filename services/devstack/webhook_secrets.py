"""Development signing secrets for the marketing webhooks, so `touchpoint run` accepts signed
deliveries out of the box and `touchpoint demo` can sign them exactly as the providers would.

Created once under the data directory (`dev-stack.json`, mode 600) and reused. A secret the
environment already sets wins: the stack then uses it, and the file records no signing material
for that provider (a tool holding the real secret signs those deliveries).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

STACK_FILE = "dev-stack.json"


def _sendgrid_key_pair() -> tuple[str, str]:
    """(private key PEM for the sender, public key base64 DER as SendGrid shows it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode()


def _complete(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored secrets, with any that is missing generated afresh."""
    out = dict(stored)
    out.setdefault("shopify_secret", secrets.token_hex(32))
    out.setdefault("mandrill_key", secrets.token_urlsafe(22))
    if not {"sendgrid_private_key", "sendgrid_public_key"} <= out.keys():
        out["sendgrid_private_key"], out["sendgrid_public_key"] = _sendgrid_key_pair()
    return out


def ensure_webhook_secrets(data_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Fills the services' environment with development webhook secrets where none is set,
    and returns what a local sender needs to sign (only for the secrets the stack uses)."""
    path = Path(data_dir) / STACK_FILE
    stored: dict[str, Any] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text("utf-8")).get("webhook_secrets") or {}
        except (OSError, ValueError):
            stored = {}
    stored = _complete(stored)
    signing: dict[str, Any] = {}
    for variable, names in (("WEBHOOK_SHOPIFY_SECRET", ("shopify_secret",)),
                            ("WEBHOOK_MANDRILL_KEY", ("mandrill_key",)),
                            ("WEBHOOK_SENDGRID_PUBLIC_KEY",
                             ("sendgrid_public_key", "sendgrid_private_key"))):
        if env.get(variable):
            continue
        env[variable] = stored[names[0]]
        signing.update({name: stored[name] for name in names})
    return signing


def write_stack_file(data_dir: Path, kafka_bootstrap_servers: str,
                     webhook_secrets: dict[str, Any]) -> Path:
    """What local tools need to reach this stack: the broker address and signing secrets."""
    path = Path(data_dir) / STACK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STACK_FILE}.tmp")
    tmp.write_text(json.dumps({"kafka_bootstrap_servers": kafka_bootstrap_servers,
                               "webhook_secrets": webhook_secrets}, indent=2), "utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
