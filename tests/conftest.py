"""Session fixtures: a real Redis server and a real Kafka-protocol broker (3 brokers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from services.devstack.broker import EmbeddedBroker
from services.devstack.redis import EmbeddedRedis
from shared.settings import Settings


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(num_brokers=3) as broker:
        yield broker


@pytest.fixture
def isolated_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the test's own, for tests that hang or stop it."""
    with EmbeddedBroker(num_brokers=3) as broker:
        yield broker


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(redis_server: EmbeddedRedis, kafka_broker: EmbeddedBroker, test_id: str) -> Settings:
    """Settings pointing at the real test servers, with topics and keys of the test's own."""
    return Settings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        redis_url=redis_server.url,
        redis_namespace=f"t{test_id}",
        topic_touchpoints=f"touchpoints.v1.{test_id}",
        topic_dead_letter=f"touchpoints.dlq.v1.{test_id}",
        topic_decisions=f"decisions.v1.{test_id}",
        kafka_consumer_group=f"profiles-{test_id}",
        kafka_linger_ms=1,
        auth_disabled=True,  # API-key tests pass their own key store
        profile_consumer_processes=0,  # consumer threads the tests can inspect; see
        # tests/profiles/test_consumer_processes.py for the processes
    )
