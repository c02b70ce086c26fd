"""The ingestion service with the confluent-kafka producer backend, for the bench comparison.

`python -m services.bench.ingestion_confluent` serves the unchanged ingestion app (same
`serve()`, same settings) with `ConfluentPublisher` instead of the kafka-python publisher.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.ingestion.app import create_app as create_ingestion_app
from services.streaming.confluent_publisher import ConfluentPublisher
from services.web.serve import serve
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    return create_ingestion_app(settings, publisher=ConfluentPublisher(settings))


if __name__ == "__main__":
    serve("services.bench.ingestion_confluent:create_app", port_setting="ingestion_port")
