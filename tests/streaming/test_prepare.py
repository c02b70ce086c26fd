"""Producers connect while a service starts, not on its first request (real broker)."""

from __future__ import annotations

import time

import httpx

from services.ingestion.app import create_app
from services.streaming.publisher import KafkaPublisher
from shared.settings import Settings
from tests.servers import serving


def wait_for(condition, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_ingestion_connects_its_producer_and_learns_the_topics_before_any_request(
        settings: Settings):
    publisher = KafkaPublisher(settings)
    with serving(create_app(settings, publisher=publisher)):
        assert wait_for(lambda: publisher._producer is not None)
        metadata = publisher._producer._metadata
        assert wait_for(lambda: metadata.partitions_for_topic(settings.topic_touchpoints))


def test_a_broker_that_is_down_at_start_up_does_not_hold_the_service_back(settings: Settings):
    down = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1",
                                       "kafka_send_timeout_s": 1.0})
    started = time.monotonic()
    with serving(create_app(down)) as base:
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert time.monotonic() - started < 5
        assert httpx.get(f"{base}/readyz").status_code == 503
