"""Provider payloads (from their documentation) map to the right touchpoints, customers and
values; batches give one event each; the same delivery always gives the same event ids."""

from __future__ import annotations

import copy

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
from services.ingestion.webhooks.model import Ignored, MappingOptions, Unmapped
from shared.contact_identity import normalize_email, normalize_phone
from tests.integrations import payloads
from tests.integrations.signing import form

OPTIONS = MappingOptions(default_country_code="84")


def mapped(module, headers: dict, body: bytes) -> list:
    return module.to_events(module.parse(headers, body), OPTIONS)


def summary(items: list) -> list[tuple]:
    return [(e["touchpoint"], e.get("customer_id") or e.get("anonymous_id"), e.get("value"),
             e.get("currency")) if isinstance(e, dict) else type(e).__name__ for e in items]


SHOPIFY_HEADERS = {"X-Shopify-Topic": "orders/create",
                   "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5"}
REFUNDED = {**payloads.SHOPIFY_ORDER, "financial_status": "refunded", "refunds": [
    {"id": 509562969, "created_at": "2022-01-02T10:00:00-05:00",
     "transactions": [{"amount": "41.94", "kind": "refund", "status": "success"}]}]}

CASES = [
    ("hubspot contact batch", hubspot, {}, orjson.dumps(payloads.HUBSPOT_EVENTS),
     [("crm.contact_updated", "hubspot:1246965", None, None),
      ("crm.contact_created", "hubspot:1246978", None, None)]),
    ("hubspot deal won", hubspot, {}, orjson.dumps([{
        "objectId": 5501, "propertyName": "dealstage", "propertyValue": "closedwon",
        "eventId": 99, "portalId": 33, "occurredAt": 1462216307945,
        "subscriptionType": "deal.propertyChange"}]),
     [("crm.deal_won", "hubspot-deal:5501", None, None)]),
    ("hubspot other deal change", hubspot, {}, orjson.dumps([{
        "objectId": 5501, "propertyName": "amount", "propertyValue": "10", "eventId": 98,
        "portalId": 33, "occurredAt": 1462216307945, "subscriptionType": "deal.propertyChange"}]),
     ["Ignored"]),
    ("sendgrid batch", sendgrid, {}, orjson.dumps(payloads.SENDGRID_EVENTS),
     [("email.send", "example@test.com", None, None),
      ("email.delivered", "example@test.com", None, None),
      ("email.click", "example@test.com", None, None),
      ("email.bounce", "example@test.com", None, None),
      ("email.unsubscribe", "example@test.com", None, None)]),
    ("sendgrid unknown event in batch", sendgrid, {},
     orjson.dumps([{**payloads.SENDGRID_EVENTS[0], "event": "machine_open"},
                   payloads.SENDGRID_EVENTS[1]]),
     ["Unmapped", ("email.delivered", "example@test.com", None, None)]),
    ("mandrill batch", mandrill, {},
     form([("mandrill_events", orjson.dumps([payloads.MANDRILL_SEND,
                                             payloads.MANDRILL_HARD_BOUNCE]).decode())]),
     [("email.send", "example.webhook@mandrillapp.com", None, None),
      ("email.bounce", "example.webhook@mandrillapp.com", None, None)]),
    ("mailchimp subscribe", mailchimp, {}, form(payloads.MAILCHIMP_SUBSCRIBE),
     [("email.subscribe", "api@mailchimp.com", None, None)]),
    ("mailchimp unsubscribe", mailchimp, {}, form(payloads.MAILCHIMP_UNSUBSCRIBE),
     [("email.unsubscribe", "api+unsub@mailchimp.com", None, None)]),
    ("mailchimp cleaned", mailchimp, {}, form(payloads.MAILCHIMP_CLEANED),
     [("email.cleaned", "api+cleaned@mailchimp.com", None, None)]),
    ("mailchimp upemail", mailchimp, {}, form(payloads.MAILCHIMP_UPEMAIL),
     [("email.profile_update", "api+new@mailchimp.com", None, None)]),
    ("mailchimp campaign names no customer", mailchimp, {}, form(payloads.MAILCHIMP_CAMPAIGN),
     ["Unmapped"]),
    ("meta messaging", meta, {}, orjson.dumps(payloads.META_MESSAGES),
     [("messenger.message", "messenger:3171290739668290", None, None),
      ("messenger.postback", "messenger:3171290739668290", None, None),
      ("messenger.reaction", "messenger:3171290739668290", None, None),
      ("messenger.read", "messenger:3171290739668290", None, None)]),
    ("instagram echo is outreach", meta, {}, orjson.dumps({"object": "instagram", "entry": [
        {"id": "1", "time": 1, "messaging": [
            {"sender": {"id": "17841400000"}, "recipient": {"id": "5544"},
             "timestamp": 1583173666767,
             "message": {"mid": "aWdfZAG1faXRlbToxOklH", "text": "hi", "is_echo": True}}]}]}),
     [("messenger.outreach", "instagram:5544", None, None)]),
    ("zalo text", zalo, {}, orjson.dumps(payloads.ZALO_USER_SEND_TEXT),
     [("zalo.message", "zalo:246845883529197922", None, None)]),
    ("zalo follow", zalo, {}, orjson.dumps(payloads.ZALO_FOLLOW),
     [("zalo.follow", "zalo:246845883529197922", None, None)]),
    ("zalo unknown", zalo, {},
     orjson.dumps({**payloads.ZALO_FOLLOW, "event_name": "shop_has_order"}),
     ["Unmapped"]),
    ("shopify order created", shopify, SHOPIFY_HEADERS, orjson.dumps(payloads.SHOPIFY_ORDER),
     [("order.confirmation", "jon@example.com", 403.0, "USD")]),
    ("shopify order paid", shopify, {**SHOPIFY_HEADERS, "X-Shopify-Topic": "orders/paid"},
     orjson.dumps(payloads.SHOPIFY_ORDER), [("order.paid", "jon@example.com", 403.0, "USD")]),
    ("shopify fulfilled", shopify, {**SHOPIFY_HEADERS, "X-Shopify-Topic": "orders/fulfilled"},
     orjson.dumps(payloads.SHOPIFY_ORDER),
     [("delivery.shipped", "jon@example.com", 403.0, "USD")]),
    ("shopify cancelled", shopify, {**SHOPIFY_HEADERS, "X-Shopify-Topic": "orders/cancelled"},
     orjson.dumps(payloads.SHOPIFY_ORDER),
     [("order.cancelled", "jon@example.com", 403.0, "USD")]),
    ("shopify refund through orders/updated", shopify,
     {**SHOPIFY_HEADERS, "X-Shopify-Topic": "orders/updated"}, orjson.dumps(REFUNDED),
     [("order.refunded", "jon@example.com", 41.94, "USD")]),
    ("shopify plain update", shopify, {**SHOPIFY_HEADERS, "X-Shopify-Topic": "orders/updated"},
     orjson.dumps(payloads.SHOPIFY_ORDER), ["Ignored"]),
    ("haravan paid, phone identity", haravan, {"X-Haravan-Topic": "orders/paid"},
     orjson.dumps(payloads.HARAVAN_ORDER), [("order.paid", "+84909123456", 450000.0, "VND")]),
]


@pytest.mark.parametrize(("name", "module", "headers", "body", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_documented_payloads_map_to_touchpoints(name, module, headers, body, expected):
    assert summary(mapped(module, headers, body)) == expected


@pytest.mark.parametrize(("name", "module", "headers", "body", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_same_delivery_gives_the_same_event_ids(name, module, headers, body, expected):
    first = [e["event_id"] for e in mapped(module, headers, body) if isinstance(e, dict)]
    second = [e["event_id"] for e in mapped(module, copy.deepcopy(headers), bytes(body))
              if isinstance(e, dict)]
    assert first == second
    assert len(set(first)) == len(first)  # a batch never collapses into one id
    assert all(event_id.startswith(f"{module.NAME}:") for event_id in first)


def test_provider_retry_fields_do_not_change_the_event_id():
    retry = [{**item, "attemptNumber": 3} for item in payloads.HUBSPOT_EVENTS]
    first = mapped(hubspot, {}, orjson.dumps(payloads.HUBSPOT_EVENTS))
    again = mapped(hubspot, {}, orjson.dumps(retry))
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
    assert first[0]["event_id"] == "hubspot:33:3816279340"


def test_sendgrid_event_ids_come_from_sg_event_id():
    events = mapped(sendgrid, {}, orjson.dumps(payloads.SENDGRID_EVENTS))
    # '=' is not allowed in our ids, so the provider id is hashed deterministically.
    assert events[0]["event_id"].startswith("sendgrid:h-")
    clean = mapped(sendgrid, {}, orjson.dumps([{**payloads.SENDGRID_EVENTS[0],
                                                "sg_event_id": "abc-123"}]))
    assert clean[0]["event_id"] == "sendgrid:abc-123"


def test_shopify_event_id_is_the_event_id_header_and_refunds_key_on_the_refund():
    created = mapped(shopify, SHOPIFY_HEADERS, orjson.dumps(payloads.SHOPIFY_ORDER))
    assert created[0]["event_id"] == "shopify:98880550-7158-44d4-b7cd-2c97c8a091b5"
    later = {**SHOPIFY_HEADERS, "X-Shopify-Topic": "orders/updated", "X-Shopify-Event-Id": "x2"}
    first = mapped(shopify, {**later, "X-Shopify-Event-Id": "x1"}, orjson.dumps(REFUNDED))
    second = mapped(shopify, later, orjson.dumps({**REFUNDED, "tags": "vip"}))
    assert first[0]["event_id"] == second[0]["event_id"] == "shopify:refund-509562969"


def test_mapped_details_keep_context_and_properties():
    click = mapped(sendgrid, {}, orjson.dumps(payloads.SENDGRID_EVENTS))[2]
    assert click["context"] == {"campaign": "cat facts", "url": "http://www.sendgrid.com/"}
    assert click["occurred_at"] == "2017-12-15T00:59:29+00:00"
    bounce = mapped(mandrill, {}, form([("mandrill_events", orjson.dumps(
        [payloads.MANDRILL_HARD_BOUNCE]).decode())]))[0]
    assert bounce["properties"]["bounce_type"] == "hard"
    subscribe = mapped(mailchimp, {}, form(payloads.MAILCHIMP_SUBSCRIBE))[0]
    assert subscribe["occurred_at"] == "2009-03-26T21:35:57+00:00"
    assert subscribe["properties"]["list_id"] == "a6b5da1054"
    order = mapped(haravan, {"X-Haravan-Topic": "orders/paid"},
                   orjson.dumps(payloads.HARAVAN_ORDER))[0]
    assert order["properties"]["order_id"] == "1019712345"
    assert order["event_id"] == "haravan:orders.paid-1019712345"


def test_decision_ids_in_custom_args_join_outcomes_to_decisions():
    item = {**payloads.SENDGRID_EVENTS[2], "decision_id": "d-77", "action_id": "email_winback"}
    event = mapped(sendgrid, {}, orjson.dumps([item]))[0]
    assert event["context"]["decision_id"] == "d-77"
    assert event["context"]["action_id"] == "email_winback"


def test_orders_without_any_identity_are_unmapped():
    order = {**payloads.HARAVAN_ORDER, "phone": None, "customer": None}
    items = mapped(haravan, {"X-Haravan-Topic": "orders/paid"}, orjson.dumps(order))
    assert isinstance(items[0], Unmapped) and "customer" in items[0].reason


def test_ignored_is_distinct_from_unmapped():
    items = mapped(meta, {}, orjson.dumps({"object": "page", "entry": [{"messaging": [
        {"sender": {"id": "1"}, "timestamp": 1, "delivery": {"mids": ["m"]}}]}]}))
    assert isinstance(items[0], Ignored)


IDENTITIES = [
    (" Jon@Example.COM ", None, "jon@example.com"),
    ("not-an-email", None, None),
    (None, "0909 123 456", "+84909123456"),
    (None, "+84 (909) 123-456", "+84909123456"),
    (None, "0084909123456", "+84909123456"),
    (None, "84909123456", "+84909123456"),
    (None, "555-555-SHIP", None),
    (None, "12", None),
]


@pytest.mark.parametrize(("email", "phone", "expected"), IDENTITIES)
def test_identity_normalisation(email, phone, expected):
    found = normalize_email(email) if email is not None else normalize_phone(phone, "84")
    assert found == expected
