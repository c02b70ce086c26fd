"""Embedded Redis and Kafka-protocol broker for local runs, benchmarks and tests."""
