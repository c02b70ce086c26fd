"""Redis stops answering mid-stream: the consumer neither commits nor loses or doubles events."""

from __future__ import annotations

import redis

from services.devstack.redis import EmbeddedRedis
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import ProfileStore
from shared.touchpoints import load_catalog
from tests.profiles.reference import produce
from tests.profiles.streams import event
from tests.profiles.test_consumer import RunningConsumer, committed_everything, counted, wait_for

CATALOG = load_catalog()


def test_no_commit_while_redis_is_down_and_exactly_once_after(settings):
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url, socket_timeout=0.5)
        store = ProfileStore(client, settings.redis_namespace)
        metrics = ProfileMetrics()
        check = committed_everything(settings)
        try:
            with RunningConsumer(settings, store, metrics) as running:
                running.consumer.retry_backoff_s = 0.2
                produce(settings, [event("e1", "web.visit", 0)])
                wait_for(lambda: counted(metrics) >= 1 and check())
                server.pause()
                produce(settings, [event(f"e{i}", "web.purchase", i, value=10, currency="USD")
                                   for i in range(2, 6)])
                wait_for(lambda: metrics.store_retries._value.get() >= 2)
                assert not check(), "offsets were committed while Redis was down"
                server.resume()
                wait_for(check)
        finally:
            check.close()
            server.resume()
        state = store.read("c:c-1").state
        assert state["n"]["ev"] == 5 and state["n"]["orders"] == 4
        client.close()
