"""One profile consumer process for the scaling measurement (`touchpoint bench --scaling`).

Settings come from the environment as in the profile service. Prints `ready` once built; on
SIGTERM prints one JSON line: the partitions it was assigned and the records it processed.
"""

from __future__ import annotations

import json
import signal
import threading

import redis

from services.profiles.consumer import build_consumer, use_quick_thread_switches
from services.profiles.metrics import ProfileMetrics
from services.profiles.store import ProfileStore
from services.streaming.publisher import KafkaPublisher
from shared.logging import configure_logging
from shared.settings import load_settings
from shared.touchpoints import load_catalog


def main() -> None:
    settings = load_settings()
    use_quick_thread_switches()  # as the profile service's consumer processes do
    configure_logging("WARNING", "text")
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    store = ProfileStore(client, settings.redis_namespace,
                         timeline_capacity=settings.profile_timeline_length,
                         dedupe_capacity=settings.profile_dedupe_window)
    dead_letters = KafkaPublisher(settings)
    consumer = build_consumer(settings, store, load_catalog(settings.touchpoint_catalog_file),
                              dead_letters, ProfileMetrics())
    seen = {"records": 0, "partitions": set()}
    apply = consumer.processor.apply

    def counting(batch):
        result = apply(batch)
        seen["records"] += len(batch.records)
        seen["partitions"].update(r.partition for r in batch.records)
        return result

    consumer.processor.apply = counting
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    try:
        consumer.run(stop)
    finally:
        dead_letters.close()
        client.close()
        print(json.dumps({"records": seen["records"],
                          "partitions": sorted(seen["partitions"])}), flush=True)


if __name__ == "__main__":
    main()
