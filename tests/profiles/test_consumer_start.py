"""A consumer started while the broker hangs waits for it instead of crashing."""

from __future__ import annotations

import threading
import time

import pytest

from services.profiles.consumer import build_kafka_consumer
from shared.errors import BrokerUnavailableError


def test_consumer_waits_for_a_hung_broker_then_connects(isolated_broker, settings):
    settings = settings.model_copy(update={
        "kafka_bootstrap_servers": isolated_broker.bootstrap_servers})
    isolated_broker.pause()
    print("injected: broker paused (SIGSTOP) before the consumer starts; resumed after 3 s")
    threading.Timer(3.0, isolated_broker.resume).start()
    started = time.monotonic()
    consumer = build_kafka_consumer(settings, connect_timeout_s=60)
    try:
        assert time.monotonic() - started >= 2.5
        consumer.subscribe([settings.topic_touchpoints])
        consumer.poll(timeout_ms=500)
    finally:
        consumer.close()


def test_consumer_gives_up_loudly_after_its_bound(isolated_broker, settings):
    settings = settings.model_copy(update={
        "kafka_bootstrap_servers": isolated_broker.bootstrap_servers})
    isolated_broker.pause()
    try:
        with pytest.raises(BrokerUnavailableError, match="no Kafka broker answered"):
            build_kafka_consumer(settings, connect_timeout_s=3)
    finally:
        isolated_broker.resume()


def test_stop_interrupts_the_wait(isolated_broker, settings):
    settings = settings.model_copy(update={
        "kafka_bootstrap_servers": isolated_broker.bootstrap_servers})
    isolated_broker.pause()
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnavailableError):
            build_kafka_consumer(settings, stop=stop, connect_timeout_s=60)
        assert time.monotonic() - started < 20
    finally:
        isolated_broker.resume()
