"""The history load is paced to the slower consumer group, on the real Kafka-protocol broker:
the embedded broker drops records a group has not read in time."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from services.bench.history_load import PacedFold


def produce(settings, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for i in range(count):
        producer.send(settings.topic_touchpoints, key=str(i).encode(), value=b"{}")
    producer.flush()
    producer.close()


def commit_all(settings, group: str) -> None:
    """The group's committed offsets at the end of every partition."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(settings.topic_touchpoints, p)
                      for p in consumer.partitions_for_topic(settings.topic_touchpoints)]
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()})
    finally:
        consumer.close()


def test_the_load_waits_for_the_slower_group(settings, test_id):
    produce(settings, 40)
    commit_all(settings, settings.kafka_consumer_group)  # the profile group read everything
    slower = f"analytics-{test_id}"

    alone = PacedFold(settings, max_lag=10, timeout_s=5)
    assert alone(40) is True
    alone.finish(40)

    paced = PacedFold(settings, max_lag=10, timeout_s=1, other_groups=(slower,))
    assert paced(40) is False and paced.gave_up  # the other group read nothing
    paced.finish(40)

    commit_all(settings, slower)
    caught_up = PacedFold(settings, max_lag=10, timeout_s=5, other_groups=(slower,))
    assert caught_up(40) is True
    caught_up.finish(40)
