"""What every ingestion route needs, built once in the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter

from services.streaming.publisher import Publisher
from shared.settings import Settings
from shared.touchpoints import TouchpointCatalog


class IngestionMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.events_accepted = Counter(
            "touchpoint_events_accepted_total", "Events acknowledged by Kafka.", registry=registry)
        self.events_rejected = Counter(
            "touchpoint_events_rejected_total", "Events refused as invalid.", registry=registry)
        self.events_dead_lettered = Counter(
            "touchpoint_events_dead_lettered_total", "Records sent to the dead-letter topic.",
            ["source"], registry=registry)


@dataclass
class Runtime:
    settings: Settings
    catalog: TouchpointCatalog
    publisher: Publisher
    metrics: IngestionMetrics
    registry: CollectorRegistry


async def get_runtime(request: Request) -> Runtime:
    # async: a plain `def` dependency would cost a worker-thread hop on every request.
    return request.app.state.runtime
