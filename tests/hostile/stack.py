"""The three service apps as hostile-input tests run them: real Redis, real broker, real keys."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.settings import Settings

SERVICE_FACTORIES = {
    "ingestion": "services.ingestion.app",
    "profile": "services.profiles.app",
    "recommender": "services.recommender.app",
}


def isolated_settings(redis_url: str, bootstrap_servers: str, **overrides) -> Settings:
    """Settings with topics, keys and groups of their own; limits on unless overridden."""
    run = uuid.uuid4().hex[:10]
    values = {
        "kafka_bootstrap_servers": bootstrap_servers, "redis_url": redis_url,
        "redis_namespace": f"h{run}", "topic_touchpoints": f"touchpoints.v1.h{run}",
        "topic_dead_letter": f"touchpoints.dlq.v1.h{run}",
        "topic_decisions": f"decisions.v1.h{run}",
        "kafka_consumer_group": f"profiles-h{run}", "kafka_linger_ms": 1,
        "kafka_send_timeout_s": 3.0, **overrides,
    }
    return Settings(**values)


def webhook_secrets() -> dict:
    """Every built-in provider configured, so requests reach signature checks (not 503)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return {
        "webhook_hubspot_client_secret": "hubspot-secret", "webhook_sendgrid_public_key": public,
        "webhook_mandrill_key": "mandrill-key", "webhook_mailchimp_token": "mailchimp-token",
        "webhook_meta_app_secret": "meta-secret", "webhook_meta_verify_token": "meta-verify",
        "webhook_zalo_app_id": "1234567890", "webhook_zalo_oa_secret_key": "zalo-secret",
        "webhook_shopify_secret": "shopify-secret", "webhook_haravan_secret": "haravan-secret",
    }


def admin_key(directory: Path) -> tuple[Path, str]:
    """A key store file holding one key with every scope; returns the file and the key."""
    from shared.api_keys import ALL_SCOPES, KeyStore

    store = KeyStore(directory / "api-keys.json")
    _, full = store.create("hostile-input tests", ALL_SCOPES, datetime.now(UTC))
    return store.path, full


def build_app(service: str, settings: Settings):
    """`create_app(settings)` of a service, or a skip naming what is missing."""
    module_name = SERVICE_FACTORIES[service]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            pytest.skip(f"the {service} service has no app yet ({module_name} does not exist)")
        raise
    return module.create_app(settings)
