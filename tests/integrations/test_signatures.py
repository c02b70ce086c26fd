"""Each provider's signature check: valid passes; tampered body, wrong secret, missing header
and stale timestamps fail. Requests are signed as the provider signs them (signing.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

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
from services.ingestion.webhooks.model import SignatureError
from tests.integrations import payloads, signing

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
URL = "https://tp.example.com/v1/webhooks/{name}"
PRIVATE, PUBLIC = signing.sendgrid_keys()
_, OTHER_PUBLIC = signing.sendgrid_keys()


def hubspot_request(secret="client-secret", body=None, at=NOW_S * 1000, url=None):
    body = body or orjson.dumps(payloads.HUBSPOT_EVENTS)
    url = url or URL.format(name="hubspot")
    return ({"X-HubSpot-Signature-v3": signing.hubspot_v3(secret, "POST", url, body, at),
             "X-HubSpot-Request-Timestamp": str(at)}, body, url)


def sendgrid_request(body=None, at=NOW_S):
    body = body or orjson.dumps(payloads.SENDGRID_EVENTS)
    return ({"X-Twilio-Email-Event-Webhook-Signature": signing.sendgrid(PRIVATE, body, at),
             "X-Twilio-Email-Event-Webhook-Timestamp": str(at)}, body, URL.format(name="sendgrid"))


def mandrill_request(key="mandrill-key"):
    url = URL.format(name="mandrill")
    params = {"mandrill_events": orjson.dumps([payloads.MANDRILL_SEND]).decode()}
    return ({"X-Mandrill-Signature": signing.mandrill(key, url, params)},
            signing.form(list(params.items())), url)


def meta_request(secret="app-secret"):
    body = orjson.dumps(payloads.META_MESSAGES)
    return {"X-Hub-Signature-256": signing.meta(secret, body)}, body, URL.format(name="meta")


def zalo_request(secret="oa-secret", at_ms=NOW_S * 1000):
    body = orjson.dumps({**payloads.ZALO_USER_SEND_TEXT, "timestamp": str(at_ms)})
    return ({"X-ZEvent-Signature": signing.zalo("360846524940903967", body, str(at_ms), secret)},
            body, URL.format(name="zalo"))


def shopify_request(secret="shop-secret", header="X-Shopify-Hmac-Sha256"):
    body = orjson.dumps(payloads.SHOPIFY_ORDER)
    return {header: signing.shopify(secret, body), "X-Shopify-Topic": "orders/create"}, body, ""


ZALO = zalo.ZaloCredentials("360846524940903967", "oa-secret")
PROVIDERS = {
    "hubspot": (hubspot, "client-secret", hubspot_request),
    "sendgrid": (sendgrid, PUBLIC, sendgrid_request),
    "mandrill": (mandrill, "mandrill-key", mandrill_request),
    "meta": (meta, {"webhook_meta_app_secret": "app-secret"}, meta_request),
    "zalo": (zalo, ZALO, zalo_request),
    "shopify": (shopify, "shop-secret", shopify_request),
    "haravan": (haravan, "shop-secret",
                lambda: shopify_request(header="X-Haravan-Hmacsha256")),
}


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_correctly_signed_request_passes(name):
    module, secret, make = PROVIDERS[name]
    headers, body, url = make()
    module.verify(headers, body, url, secret, NOW)


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_tampered_body_fails(name):
    module, secret, make = PROVIDERS[name]
    headers, body, url = make()
    tampered = body.replace(b"1", b"2", 1)  # one digit of an id, amount or time
    assert tampered != body
    with pytest.raises(SignatureError):
        module.verify(headers, tampered, url, secret, NOW)


WRONG = {
    "hubspot": "other-secret", "sendgrid": OTHER_PUBLIC, "mandrill": "other-key",
    "meta": {"webhook_meta_app_secret": "other"},
    "zalo": zalo.ZaloCredentials("360846524940903967", "other"),
    "shopify": "other", "haravan": "other",
}


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_wrong_secret_fails(name):
    module, _, make = PROVIDERS[name]
    headers, body, url = make()
    with pytest.raises(SignatureError):
        module.verify(headers, body, url, WRONG[name], NOW)


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_missing_signature_header_fails(name):
    module, secret, make = PROVIDERS[name]
    headers, body, url = make()
    signature_headers = {"X-HubSpot-Signature-v3", "X-Twilio-Email-Event-Webhook-Signature",
                         "X-Mandrill-Signature", "X-Hub-Signature-256", "X-ZEvent-Signature",
                         "X-Shopify-Hmac-Sha256", "X-Haravan-Hmacsha256"}
    stripped = {k: v for k, v in headers.items() if k not in signature_headers}
    assert stripped != headers
    with pytest.raises(SignatureError, match="missing"):
        module.verify(stripped, body, url, secret, NOW)


STALE = [
    ("hubspot", lambda: hubspot_request(at=(NOW_S - 301) * 1000)),
    ("hubspot", lambda: hubspot_request(at=(NOW_S + 301) * 1000)),
    ("sendgrid", lambda: sendgrid_request(at=NOW_S - 301)),
    ("zalo", lambda: zalo_request(at_ms=(NOW_S - 86401) * 1000)),
]


@pytest.mark.parametrize(("name", "make"), STALE, ids=[f"{n}-{i}" for i, (n, _) in
                                                       enumerate(STALE)])
def test_stale_timestamps_fail_even_when_signed(name, make):
    module, secret, _ = PROVIDERS[name]
    headers, body, url = make()
    with pytest.raises(SignatureError, match=r"old|future"):
        module.verify(headers, body, url, secret, NOW)


def test_timestamps_inside_the_window_pass():
    headers, body, url = hubspot_request(at=(NOW_S - 299) * 1000)
    hubspot.verify(headers, body, url, "client-secret", NOW)
    headers, body, url = sendgrid_request(at=NOW_S - 299)
    sendgrid.verify(headers, body, url, PUBLIC, NOW)


def test_hubspot_signs_the_decoded_uri():
    url = "https://tp.example.com/v1/webhooks/hubspot?portal=33&next=%2Fdone%3Fok"
    decoded = "https://tp.example.com/v1/webhooks/hubspot?portal=33&next=/done?ok"
    headers, body, _ = hubspot_request(url=decoded)
    hubspot.verify(headers, body, url, "client-secret", NOW)


def test_hubspot_signature_covers_the_url():
    headers, body, url = hubspot_request()
    with pytest.raises(SignatureError):
        hubspot.verify(headers, body, url.replace("tp.", "evil."), "client-secret", NOW)


def test_mandrill_signature_covers_the_url():
    headers, body, url = mandrill_request()
    with pytest.raises(SignatureError):
        mandrill.verify(headers, body, url + "?x=1", "mandrill-key", NOW)


def test_sendgrid_accepts_a_pem_key_and_refuses_garbage_keys():
    from cryptography.hazmat.primitives import serialization

    pem = PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    headers, body, url = sendgrid_request()
    sendgrid.verify(headers, body, url, pem, NOW)
    with pytest.raises(ValueError, match="verification key"):
        sendgrid.load_public_key("bm90IGEga2V5")


MAILCHIMP_URLS = [
    ("https://tp.example.com/v1/webhooks/mailchimp?token=s3cret", True),
    ("https://tp.example.com/v1/webhooks/mailchimp?token=wrong", False),
    ("https://tp.example.com/v1/webhooks/mailchimp", False),
]


@pytest.mark.parametrize(("url", "ok"), MAILCHIMP_URLS)
def test_mailchimp_secret_token_in_the_url(url, ok):
    body = signing.form(payloads.MAILCHIMP_SUBSCRIBE)
    if ok:
        mailchimp.verify({}, body, url, "s3cret", NOW)
    else:
        with pytest.raises(SignatureError):
            mailchimp.verify({}, body, url, "s3cret", NOW)


HANDSHAKES = [
    ({"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "1158201444"},
     "1158201444"),
    ({"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}, None),
    ({"hub.mode": "unsubscribe", "hub.verify_token": "vt", "hub.challenge": "1"}, None),
]


@pytest.mark.parametrize(("query", "answer"), HANDSHAKES)
def test_meta_hub_challenge(query, answer):
    secret = {"webhook_meta_app_secret": "app", "webhook_meta_verify_token": "vt"}
    if answer:
        assert meta.handshake(query, secret) == answer
    else:
        with pytest.raises(SignatureError):
            meta.handshake(query, secret)


def test_zalo_scheme_lives_in_one_function():
    body = b'{"timestamp":"1"}'
    assert zalo.mac("app", body, "1", "key") == signing.zalo("app", body, "1", "key")
    assert zalo.mac("app", body, "1", "key") != zalo.mac("app", body, "1", "other")


def test_header_names_are_case_insensitive():
    headers, body, url = shopify_request()
    lowered = {k.lower(): v for k, v in headers.items()}
    shopify.verify(lowered, body, url, "shop-secret", NOW)
