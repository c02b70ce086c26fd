"""Putting records on Kafka and knowing they are there: the broker must acknowledge each one.

`KafkaPublisher` is the kafka-python adapter; `InMemoryPublisher` is the fake used where no
broker is wanted. Both raise `BrokerUnavailableError` when a record is not acknowledged in time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from services.streaming.produce_futures import release
from shared.errors import BrokerUnavailableError
from shared.settings import Settings
from shared.stream import Record

log = logging.getLogger(__name__)

# Bounds on the consumer calls kafka-python would otherwise let block without end: a commit
# that times out is retried with the next batch, and a close that times out leaves the group
# to expire the member's session.
CONSUMER_COMMIT_TIMEOUT_MS = 5_000
CONSUMER_CLOSE_TIMEOUT_MS = 2_000


class Publisher(Protocol):
    def publish(self, topic: str, records: Sequence[Record]) -> None: ...
    def prepare(self, topics: Sequence[str]) -> None: ...
    def check(self) -> None: ...
    def close(self) -> None: ...


def prepare_in_background(publisher: Publisher, topics: Sequence[str]) -> threading.Thread:
    """Connects `publisher` and learns the topics' partitions while the service starts, so
    that the first requests do not pay for it (a cold producer made the first seconds of
    traffic wait up to the send timeout). Failures are left for the first publish and the
    readiness check to report."""

    def prepare() -> None:
        try:
            publisher.prepare(topics)
        except Exception as exc:  # reported by the first publish instead
            log.info("producer not prepared at start-up: %s", exc)

    thread = threading.Thread(target=prepare, name="producer-prepare", daemon=True)
    thread.start()
    return thread


def kafka_client_options(settings: Settings) -> dict:
    """Connection options every kafka-python client of ours shares (security included)."""
    options: dict = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    if settings.kafka_ssl_cafile:
        options["ssl_cafile"] = settings.kafka_ssl_cafile
    return options


class KafkaPublisher:
    """A lazily connected kafka-python producer that waits for acknowledgements."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._last_failure: tuple[float, str] | None = None

    def _build(self) -> KafkaProducer:
        s = self.settings
        timeout_ms = int(s.kafka_send_timeout_s * 1000)
        return KafkaProducer(
            **kafka_client_options(s),
            acks=s.kafka_acks if s.kafka_acks == "all" else int(s.kafka_acks),
            enable_idempotence=s.kafka_enable_idempotence and s.kafka_acks == "all",
            linger_ms=s.kafka_linger_ms,
            compression_type=None if s.kafka_compression == "none" else s.kafka_compression,
            retries=s.kafka_retries,
            request_timeout_ms=s.kafka_request_timeout_ms,
            max_block_ms=timeout_ms,
            batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
        )

    def producer(self) -> KafkaProducer:
        if self._producer is None:
            with self._lock:
                if self._producer is None:
                    try:
                        self._producer = self._build()
                    except KafkaError as exc:
                        raise BrokerUnavailableError(f"Kafka is unreachable: {exc}") from exc
        return self._producer

    def prepare(self, topics: Sequence[str]) -> None:
        producer = self.producer()
        for topic in topics:
            producer.partitions_for(topic)

    def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Returns once the broker acknowledged every record; raises otherwise."""
        if not records:
            return
        deadline = time.monotonic() + self.settings.kafka_send_timeout_s
        producer = self.producer()
        try:
            futures = [
                producer.send(topic, key=r.key, value=r.value, headers=r.headers) for r in records
            ]
            for future in futures:
                future.get(timeout=max(0.001, deadline - time.monotonic()))
                release(future)
        except KafkaTimeoutError as exc:
            self._last_failure = (time.monotonic(), "acknowledgement timed out")
            raise BrokerUnavailableError(
                f"Kafka did not acknowledge within {self.settings.kafka_send_timeout_s:g} s"
            ) from exc
        except KafkaError as exc:
            self._last_failure = (time.monotonic(), str(exc))
            raise BrokerUnavailableError(f"Kafka refused the records: {exc}") from exc

    def check(self) -> None:
        """Not ready while disconnected, or for 10 s after a send failed."""
        if self._last_failure and time.monotonic() - self._last_failure[0] < 10:
            raise BrokerUnavailableError(f"last send failed: {self._last_failure[1]}")
        # kafka-python 2.2 keeps the network client in the producer's sender thread
        client = self.producer()._sender._client
        brokers = client.cluster.brokers()
        connected = any(client.connected(b.nodeId) for b in brokers)
        if not connected and not client.bootstrap_connected():
            client.poll(timeout_ms=0)
            raise BrokerUnavailableError("not connected to any Kafka broker")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


class InMemoryPublisher:
    """Keeps records by topic; `available=False` makes it act like a broker outage."""

    def __init__(self) -> None:
        self.topics: dict[str, list[Record]] = {}
        self.available = True

    def publish(self, topic: str, records: Sequence[Record]) -> None:
        self.check()
        self.topics.setdefault(topic, []).extend(records)

    def prepare(self, topics: Sequence[str]) -> None:
        pass

    def check(self) -> None:
        if not self.available:
            raise BrokerUnavailableError("in-memory broker marked unavailable")

    def close(self) -> None:
        pass


def build_publisher(settings: Settings) -> Publisher:
    """The producer chosen by `KAFKA_CLIENT` (confluent-kafka is an optional dependency)."""
    if settings.kafka_client == "confluent":
        from services.streaming.confluent_publisher import ConfluentPublisher

        return ConfluentPublisher(settings)
    return KafkaPublisher(settings)
