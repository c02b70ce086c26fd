"""A provider retry through the real broker and the real profile store counts once."""

from __future__ import annotations

import httpx
import orjson

from services.ingestion.app import create_app
from services.profiles.fold import event_delta
from services.profiles.store import Outcome, ProfileStore
from shared import redis_keys
from shared.stream import decode_event
from shared.touchpoints import load_catalog
from tests.integrations import payloads, signing
from tests.kafka_reading import read_topic
from tests.servers import serving


def test_shopify_retry_lands_twice_on_kafka_and_counts_once_in_the_profile(
        settings, redis_client):
    settings = settings.model_copy(update={"webhook_shopify_secret": "shop-secret"})
    body = orjson.dumps(payloads.SHOPIFY_ORDER)
    headers = {"X-Shopify-Hmac-Sha256": signing.shopify("shop-secret", body),
               "X-Shopify-Topic": "orders/paid", "X-Shopify-Event-Id": "evt-retry-1",
               "content-type": "application/json"}
    with serving(create_app(settings)) as base:
        for _ in range(2):  # Shopify's retry after a timeout on its side
            reply = httpx.post(f"{base}/v1/webhooks/shopify", content=body, headers=headers)
            assert reply.status_code == 200, reply.text
        tampered = httpx.post(f"{base}/v1/webhooks/shopify", content=body + b" ",
                              headers=headers)
        assert tampered.status_code == 401
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints)
    assert len(records) == 2  # the tampered copy produced nothing
    store = ProfileStore(redis_client, settings.redis_namespace)
    catalog = load_catalog()
    outcomes = []
    for record in records:
        event = decode_event(record.value)
        subject = redis_keys.customer_subject(event.customer_id)
        outcomes += store.apply([event_delta(event, catalog, subject)])
    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE]
