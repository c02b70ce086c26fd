"""Kafka adapters every service shares: acknowledged publishing and client options."""
