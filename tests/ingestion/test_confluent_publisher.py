"""Both producer backends against the real broker: one contract, kafka-python and confluent."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from services.ingestion.app import create_app
from services.streaming.confluent_publisher import ConfluentPublisher, confluent_options
from services.streaming.publisher import KafkaPublisher
from shared.errors import BrokerUnavailableError
from shared.stream import Record
from tests.kafka_reading import read_topic
from tests.servers import serving

BACKENDS = {"kafka-python": KafkaPublisher, "confluent": ConfluentPublisher}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    return BACKENDS[request.param]


def records(count: int, prefix: str) -> list[Record]:
    return [Record(key=f"c-{i % 5}".encode(), value=orjson.dumps({"n": i, "p": prefix}),
                   headers=[("ce_id", f"{prefix}-{i}".encode())]) for i in range(count)]


def publish_within(publisher, topic: str, batch: list[Record], seconds: float) -> None:
    """Publishes, retrying refusals, until the broker acknowledges or the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            publisher.publish(topic, batch)
            return
        except BrokerUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_publish_returns_after_every_record_is_on_the_topic(backend, settings):
    publisher = backend(settings)
    try:
        sent = records(300, "direct")
        publisher.publish(settings.topic_touchpoints, sent)
        publisher.check()
    finally:
        publisher.close()
    read = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, 300)
    assert sorted((r.key, r.value, tuple(r.headers)) for r in read) == sorted(
        (r.key, r.value, tuple(r.headers)) for r in sent)
    # One customer's records stay in one partition.
    assert len({r.partition for r in read if r.key == b"c-1"}) == 1


def test_ingestion_service_on_either_backend(backend, settings):
    now = datetime.now(UTC).isoformat()
    batch = {"events": [{"event_id": f"b-{i}", "customer_id": f"c-{i}", "occurred_at": now,
                         "touchpoint": "web.visit"} for i in range(50)]}
    with serving(create_app(settings, publisher=backend(settings))) as base:
        response = httpx.post(f"{base}/v1/events", json=batch)
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 50
    read = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints, 50)
    assert sorted(orjson.loads(r.value)["event_id"] for r in read) == sorted(
        e["event_id"] for e in batch["events"])


def test_hung_broker_raises_within_the_send_timeout_and_recovers(backend, isolated_broker,
                                                                 settings):
    settings = settings.model_copy(update={
        "kafka_bootstrap_servers": isolated_broker.bootstrap_servers,
        "kafka_send_timeout_s": 1.0, "kafka_request_timeout_ms": 800,
    })
    publisher = backend(settings)
    try:
        # A fresh producer's first send also fetches metadata; on a busy machine that can
        # take longer than the short timeout this test is about.
        publish_within(publisher, settings.topic_touchpoints, records(5, "before"), 15)
        isolated_broker.pause()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError):
            publisher.publish(settings.topic_touchpoints, records(5, "during"))
        assert time.monotonic() - started < 3
        with pytest.raises(BrokerUnavailableError):
            publisher.check()
        isolated_broker.resume()
        publish_within(publisher, settings.topic_touchpoints, records(5, "after"), 15)
    finally:
        isolated_broker.resume()
        publisher.close()
    read = read_topic(settings.kafka_bootstrap_servers, settings.topic_touchpoints,
                      timeout_s=10)
    prefixes = {orjson.loads(r.value)["p"] for r in read}
    assert {"before", "after"} <= prefixes


def test_confluent_options_follow_the_settings(settings):
    options = confluent_options(settings.model_copy(update={
        "kafka_compression": "none", "kafka_acks": "1", "kafka_linger_ms": 7}))
    assert options["compression.type"] == "none"
    assert options["acks"] == "1" and options["enable.idempotence"] is False
    assert options["linger.ms"] == 7
    assert options["bootstrap.servers"] == settings.kafka_bootstrap_servers
