"""The providers this deployment serves, each with its secret resolved from settings.

Built once in the app factory. A provider whose secret is not configured stays listed but
answers 503 naming the setting, so it never accepts unsigned data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from services.ingestion.webhooks import (
    haravan,
    hubspot,
    mailchimp,
    mandrill,
    meta,
    sendgrid,
    shopify,
    zalo,
)
from services.ingestion.webhooks.generic import MappingError, generic_providers
from services.ingestion.webhooks.model import Provider
from shared.settings import Settings

BUILT_IN: tuple[Provider, ...] = (
    hubspot.PROVIDER, sendgrid.PROVIDER, mandrill.PROVIDER, mailchimp.PROVIDER, meta.PROVIDER,
    zalo.PROVIDER, shopify.PROVIDER, haravan.PROVIDER,
)


@dataclass(frozen=True)
class ConfiguredProvider:
    provider: Provider
    secret: Any | None  # None: not configured, answers 503
    missing: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return self.secret is not None


def _plain(settings: Settings, name: str) -> str | None:
    value = getattr(settings, name)
    if value is None:
        return None
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return text or None


def _configure(provider: Provider, settings: Settings) -> ConfiguredProvider:
    values = {name: _plain(settings, name) for name in provider.secret_settings}
    # Meta's verify token only serves the GET handshake; the app secret is what signs.
    required = ("webhook_meta_app_secret",) if provider.name == "meta" else provider.secret_settings
    missing = tuple(name.upper() for name in required if not values.get(name))
    if missing:
        return ConfiguredProvider(provider, None, missing)
    secret: Any = values[provider.secret_settings[0]]
    if provider.name == "sendgrid":
        secret = sendgrid.load_public_key(secret)  # fails fast on a bad key
        provider = replace(provider, verify=partial(
            sendgrid.verify, tolerance_s=settings.webhook_timestamp_tolerance_s))
    elif provider.name == "hubspot":
        provider = replace(provider, verify=partial(
            hubspot.verify, tolerance_s=settings.webhook_timestamp_tolerance_s))
    elif provider.name == "zalo":
        secret = zalo.ZaloCredentials(values["webhook_zalo_app_id"],
                                      values["webhook_zalo_oa_secret_key"])
        provider = replace(provider, verify=partial(
            zalo.verify, max_age_s=settings.webhook_zalo_max_age_s))
    elif provider.name == "meta":
        secret = values
    return ConfiguredProvider(provider, secret)


def build_registry(settings: Settings) -> dict[str, ConfiguredProvider]:
    registry = {p.name: _configure(p, settings) for p in BUILT_IN}
    if settings.webhook_mapping_file is not None:
        for name, provider in generic_providers(settings.webhook_mapping_file).items():
            if name in registry:
                raise MappingError(f"generic provider {name!r} would shadow the built-in one")
            secret = settings.webhook_generic_secrets.get(name)
            text = secret.get_secret_value() if secret is not None else ""
            if provider.api_key_scope:  # an API key with webhooks:<name> authenticates
                registry[name] = ConfiguredProvider(provider, "")
            elif text:
                registry[name] = ConfiguredProvider(provider, text)
            else:
                registry[name] = ConfiguredProvider(
                    provider, None, (f'WEBHOOK_GENERIC_SECRETS["{name}"]',))
    return registry
