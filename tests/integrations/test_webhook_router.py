"""`POST /v1/webhooks/{provider}` end to end through the app: signed deliveries become events
on the topic; bad signatures get 401 and produce nothing; unmappable items are dead-lettered
with their reason and answered 2xx; unconfigured providers answer 503."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import create_app
from services.streaming.publisher import InMemoryPublisher
from shared.settings import Settings
from shared.stream import dead_letter_original, decode_event, header
from tests.integrations import payloads, signing

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://testserver"
PRIVATE, PUBLIC = signing.sendgrid_keys()
SECRETS = dict(
    webhook_hubspot_client_secret="hub-secret", webhook_sendgrid_public_key=PUBLIC,
    webhook_mandrill_key="mandrill-key", webhook_mailchimp_token="mc-token",
    webhook_meta_app_secret="meta-secret", webhook_meta_verify_token="meta-verify",
    webhook_zalo_app_id="360846524940903967", webhook_zalo_oa_secret_key="zalo-secret",
    webhook_shopify_secret="shop-secret", webhook_haravan_secret="hara-secret",
    webhook_mapping_file=ROOT / "deploy" / "mappings" / "webhook-mappings.json",
    webhook_generic_secrets={"mautic": "mautic-secret", "activecampaign": "ac-token"},
)


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


def make_client(publisher: InMemoryPublisher, **overrides) -> TestClient:
    # No API keys configured at all: provider webhooks do not need them.
    settings = Settings(**{**SECRETS, **overrides})
    return TestClient(create_app(settings, publisher))


@pytest.fixture
def client(publisher: InMemoryPublisher) -> TestClient:
    return make_client(publisher)


def events(publisher: InMemoryPublisher) -> list:
    return [decode_event(r.value) for r in publisher.topics.get("touchpoints.v1", [])]


def dead(publisher: InMemoryPublisher) -> list:
    return publisher.topics.get("touchpoints.dlq.v1", [])


def now_ms() -> int:
    return int(time.time() * 1000)


def shopify_post(client, body: bytes, topic="orders/paid", secret="shop-secret",
                 event_id="6f1c2bd0-9c1f-4b7e-9a0a-1b2c3d4e5f60"):
    return client.post("/v1/webhooks/shopify", content=body, headers={
        "X-Shopify-Hmac-Sha256": signing.shopify(secret, body), "X-Shopify-Topic": topic,
        "X-Shopify-Event-Id": event_id, "X-Shopify-Shop-Domain": "example.myshopify.com",
        "content-type": "application/json"})


def test_shopify_order_becomes_one_event_with_value_and_identity(client, publisher):
    reply = shopify_post(client, orjson.dumps(payloads.SHOPIFY_ORDER))
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 1
    [event] = events(publisher)
    assert (event.touchpoint, event.customer_id, event.value, event.currency) == \
        ("order.paid", "jon@example.com", 403.0, "USD")
    assert event.source == "webhook:shopify"
    assert event.event_id == "shopify:6f1c2bd0-9c1f-4b7e-9a0a-1b2c3d4e5f60"
    record = publisher.topics["touchpoints.v1"][0]
    assert record.key == b"jon@example.com"
    assert header(record.headers, "ce_source") == "/touchpoint/webhook:shopify"


def test_a_retried_delivery_carries_the_same_event_id(client, publisher):
    body = orjson.dumps(payloads.SHOPIFY_ORDER)
    assert shopify_post(client, body).status_code == 200
    assert shopify_post(client, body).status_code == 200
    first, retry = events(publisher)
    assert first.event_id == retry.event_id  # the profile consumer counts it once


@pytest.mark.parametrize("tamper", ["body", "secret", "missing"])
def test_bad_signatures_get_401_and_produce_nothing(client, publisher, tamper):
    body = orjson.dumps(payloads.SHOPIFY_ORDER)
    if tamper == "body":
        reply = client.post("/v1/webhooks/shopify", content=body.replace(b"403.00", b"4.00"),
                            headers={"X-Shopify-Hmac-Sha256": signing.shopify("shop-secret", body),
                                     "X-Shopify-Topic": "orders/paid"})
    elif tamper == "secret":
        reply = shopify_post(client, body, secret="guessed")
    else:
        reply = client.post("/v1/webhooks/shopify", content=body,
                            headers={"X-Shopify-Topic": "orders/paid"})
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "invalid_signature"
    assert "X-Shopify-Hmac-Sha256" in reply.json()["error"]["message"]
    assert publisher.topics == {}


def test_stale_hubspot_timestamp_gets_401(client, publisher):
    body = orjson.dumps(payloads.HUBSPOT_EVENTS)
    stale = now_ms() - 6 * 60 * 1000
    url = f"{BASE}/v1/webhooks/hubspot"
    reply = client.post("/v1/webhooks/hubspot", content=body, headers={
        "X-HubSpot-Signature-v3": signing.hubspot_v3("hub-secret", "POST", url, body, stale),
        "X-HubSpot-Request-Timestamp": str(stale), "content-type": "application/json"})
    assert reply.status_code == 401 and "old" in reply.json()["error"]["message"]
    assert publisher.topics == {}


def test_hubspot_batch(client, publisher):
    body = orjson.dumps(payloads.HUBSPOT_EVENTS)
    at = now_ms()
    url = f"{BASE}/v1/webhooks/hubspot"
    reply = client.post("/v1/webhooks/hubspot", content=body, headers={
        "X-HubSpot-Signature-v3": signing.hubspot_v3("hub-secret", "POST", url, body, at),
        "X-HubSpot-Request-Timestamp": str(at), "content-type": "application/json"})
    assert reply.status_code == 200, reply.text
    assert [(e.touchpoint, e.customer_id) for e in events(publisher)] == [
        ("crm.contact_updated", "hubspot:1246965"), ("crm.contact_created", "hubspot:1246978")]


def test_hubspot_behind_a_proxy_uses_the_public_base_url(publisher):
    client = make_client(publisher, webhook_public_base_url="https://tp.example.com/")
    body = orjson.dumps(payloads.HUBSPOT_EVENTS)
    at = now_ms()
    url = "https://tp.example.com/v1/webhooks/hubspot"
    reply = client.post("/v1/webhooks/hubspot", content=body, headers={
        "X-HubSpot-Signature-v3": signing.hubspot_v3("hub-secret", "POST", url, body, at),
        "X-HubSpot-Request-Timestamp": str(at)})
    assert reply.status_code == 200, reply.text


def test_sendgrid_batch_with_one_unknown_event(client, publisher):
    batch = [*payloads.SENDGRID_EVENTS, {**payloads.SENDGRID_EVENTS[0], "event": "machine_open",
                                         "sg_event_id": "zzz"}]
    body = orjson.dumps(batch)
    at = int(time.time())
    reply = client.post("/v1/webhooks/sendgrid", content=body, headers={
        "X-Twilio-Email-Event-Webhook-Signature": signing.sendgrid(PRIVATE, body, at),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(at), "content-type": "application/json"})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert (answer["accepted"], answer["dead_lettered"]) == (5, 1)
    assert [e.touchpoint for e in events(publisher)] == [
        "email.send", "email.delivered", "email.click", "email.bounce", "email.unsubscribe"]
    [letter] = dead(publisher)
    body_of_letter = orjson.loads(letter.value)
    assert body_of_letter["reason"] == "unsupported SendGrid event 'machine_open'"
    assert body_of_letter["source"] == "webhook:sendgrid"
    assert orjson.loads(dead_letter_original(letter.value))["event"] == "machine_open"


def test_mandrill_form_batch(client, publisher):
    url = f"{BASE}/v1/webhooks/mandrill"
    params = {"mandrill_events": orjson.dumps([payloads.MANDRILL_SEND,
                                               payloads.MANDRILL_HARD_BOUNCE]).decode()}
    reply = client.post("/v1/webhooks/mandrill", content=signing.form(list(params.items())),
                        headers={"X-Mandrill-Signature": signing.mandrill("mandrill-key", url,
                                                                          params),
                                 "content-type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200, reply.text
    assert [e.touchpoint for e in events(publisher)] == ["email.send", "email.bounce"]
    assert client.head("/v1/webhooks/mandrill").status_code == 200


def test_mailchimp_token_get_validation_and_campaign_dead_letter(client, publisher):
    assert client.get("/v1/webhooks/mailchimp").status_code == 200
    good = client.post("/v1/webhooks/mailchimp?token=mc-token",
                       content=signing.form(payloads.MAILCHIMP_SUBSCRIBE),
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert good.status_code == 200 and good.json()["accepted"] == 1
    wrong = client.post("/v1/webhooks/mailchimp?token=nope",
                        content=signing.form(payloads.MAILCHIMP_SUBSCRIBE))
    assert wrong.status_code == 401
    campaign = client.post("/v1/webhooks/mailchimp?token=mc-token",
                           content=signing.form(payloads.MAILCHIMP_CAMPAIGN))
    assert campaign.status_code == 200 and campaign.json()["dead_lettered"] == 1
    assert [e.customer_id for e in events(publisher)] == ["api@mailchimp.com"]
    assert len(dead(publisher)) == 1


def test_meta_handshake_and_messages(client, publisher):
    ok = client.get("/v1/webhooks/meta", params={
        "hub.mode": "subscribe", "hub.verify_token": "meta-verify", "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    refused = client.get("/v1/webhooks/meta", params={
        "hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"})
    assert refused.status_code == 403
    body = orjson.dumps(payloads.META_MESSAGES)
    reply = client.post("/v1/webhooks/meta", content=body,
                        headers={"X-Hub-Signature-256": signing.meta("meta-secret", body)})
    assert reply.status_code == 200, reply.text
    assert [e.touchpoint for e in events(publisher)] == [
        "messenger.message", "messenger.postback", "messenger.reaction", "messenger.read"]


def test_zalo_follow(client, publisher):
    stamp = str(now_ms())
    body = orjson.dumps({**payloads.ZALO_FOLLOW, "timestamp": stamp})
    reply = client.post("/v1/webhooks/zalo", content=body, headers={
        "X-ZEvent-Signature": signing.zalo("360846524940903967", body, stamp, "zalo-secret")})
    assert reply.status_code == 200, reply.text
    [event] = events(publisher)
    assert (event.touchpoint, event.customer_id) == ("zalo.follow", "zalo:246845883529197922")


def test_haravan_order_with_local_phone(client, publisher):
    body = orjson.dumps(payloads.HARAVAN_ORDER)
    reply = client.post("/v1/webhooks/haravan", content=body, headers={
        "X-Haravan-Hmacsha256": signing.shopify("hara-secret", body),
        "X-Haravan-Topic": "orders/paid"})
    assert reply.status_code == 200, reply.text
    [event] = events(publisher)
    assert (event.customer_id, event.value, event.currency) == ("+84909123456", 450000.0, "VND")


def test_authentic_but_invalid_mapped_event_is_dead_lettered_with_fields(client, publisher):
    order = {**payloads.SHOPIFY_ORDER, "currency": "US"}  # not ISO 4217
    reply = shopify_post(client, orjson.dumps(order))
    assert reply.status_code == 200
    assert reply.json()["dead_lettered"] == 1 and events(publisher) == []
    letter = orjson.loads(dead(publisher)[0].value)
    assert letter["reason"] == "mapped event is invalid"
    assert letter["errors"][0]["field"] == "currency"


def test_unparseable_authentic_body_is_dead_lettered(client, publisher):
    body = b"not json at all"
    reply = shopify_post(client, body)
    assert reply.status_code == 200 and reply.json()["dead_lettered"] == 1
    assert dead_letter_original(dead(publisher)[0].value) == body


def test_unconfigured_provider_answers_503_naming_the_setting(publisher):
    client = make_client(publisher, webhook_shopify_secret=None)
    reply = shopify_post(client, orjson.dumps(payloads.SHOPIFY_ORDER))
    assert reply.status_code == 503
    assert "WEBHOOK_SHOPIFY_SECRET" in reply.json()["error"]["message"]
    assert publisher.topics == {}


def test_unknown_provider_is_404_listing_the_known_ones(client):
    reply = client.post("/v1/webhooks/klaviyo", content=b"{}")
    assert reply.status_code == 404
    assert "shopify" in reply.json()["error"]["message"]


def test_broker_outage_answers_503_so_the_provider_retries(client, publisher):
    publisher.available = False
    reply = shopify_post(client, orjson.dumps(payloads.SHOPIFY_ORDER))
    assert reply.status_code == 503


# --- generic providers (deploy/mappings/webhook-mappings.json) ---------------------------

# https://developer.mautic.org/#webhooks (email open payload, trimmed)
MAUTIC_OPEN = {"mautic.email_on_open": [{
    "stat": {"id": 1, "emailAddress": "jane@example.com", "dateSent": "2026-11-20T08:43:01+00:00",
             "isRead": True, "dateRead": "2026-11-20T08:58:57+00:00", "openCount": 1,
             "email": {"id": 1, "name": "Welcome", "subject": "Welcome!"},
             "lead": {"id": 26, "points": 10,
                      "fields": {"core": {"email": {"value": "Jane@Example.com"}}}}},
    "timestamp": "2026-11-20T08:58:57+00:00"}]}


def test_mautic_mapping_with_hmac_header(client, publisher):
    body = orjson.dumps(MAUTIC_OPEN)
    signature = base64.b64encode(hmac.new(b"mautic-secret", body, hashlib.sha256).digest())
    reply = client.post("/v1/webhooks/mautic", content=body,
                        headers={"Webhook-Signature": signature.decode()})
    assert reply.status_code == 200, reply.text
    [event] = events(publisher)
    assert (event.touchpoint, event.customer_id, event.event_id, event.context.campaign) == \
        ("email.open", "jane@example.com", "mautic:1:1", "Welcome")
    bad = client.post("/v1/webhooks/mautic", content=body, headers={"Webhook-Signature": "x"})
    assert bad.status_code == 401


# https://developers.activecampaign.com/page/webhooks (subscribe example fields)
AC_SUBSCRIBE = [("type", "subscribe"), ("date_time", "2026-11-20 16:30:00"),
                ("initiated_by", "admin"), ("initiated_from", "admin"), ("list", "1"),
                ("contact[id]", "42"), ("contact[email]", "test@example.com"),
                ("contact[first_name]", "Test"), ("contact[phone]", "")]


def test_activecampaign_mapping_with_url_token(client, publisher):
    body = signing.form(AC_SUBSCRIBE)
    reply = client.post("/v1/webhooks/activecampaign?token=ac-token", content=body)
    assert reply.status_code == 200, reply.text
    [event] = events(publisher)
    assert (event.touchpoint, event.customer_id) == ("email.subscribe", "test@example.com")
    assert event.occurred_at.isoformat() == "2026-11-20T16:30:00+07:00"
    again = client.post("/v1/webhooks/activecampaign?token=ac-token", content=body)
    assert again.json()["event_ids"] == [event.event_id]
    assert client.post("/v1/webhooks/activecampaign?token=x", content=body).status_code == 401


def test_out_of_range_signed_timestamps_are_401_not_500(client, publisher):
    body = orjson.dumps(payloads.SENDGRID_EVENTS)
    huge = "9" * 30
    reply = client.post("/v1/webhooks/sendgrid", content=body, headers={
        "X-Twilio-Email-Event-Webhook-Signature": signing.sendgrid(PRIVATE, body, 1),
        "X-Twilio-Email-Event-Webhook-Timestamp": huge})
    assert reply.status_code == 401
    assert publisher.topics == {}


HOSTILE_ORDERS = [
    {"id": 1, "email": "a@b.co", "total_price": "1e400", "currency": "USD",
     "updated_at": "2026-11-20T00:00:00Z"},
    {"id": 1, "email": "a@b.co", "updated_at": "9999999-01-01"},
    {"id": {"nested": True}, "email": ["x"], "customer": "not an object"},
    {"id": 2, "customer": {"id": 5, "phone": 84909123456}, "updated_at": 17},
]


@pytest.mark.parametrize("order", HOSTILE_ORDERS)
def test_authentic_hostile_payloads_never_500(client, publisher, order):
    reply = shopify_post(client, orjson.dumps(order))
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["accepted"] + answer["dead_lettered"] + answer["ignored"] >= 1
