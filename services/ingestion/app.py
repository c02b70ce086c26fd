"""The ingestion service: touchpoint events in, onto Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.ingestion import api
from services.ingestion.deps import IngestionMetrics, Runtime
from services.ingestion.webhooks.router import build_router as webhook_router
from services.streaming.publisher import Publisher, build_publisher, prepare_in_background
from services.web.auth import install_auth
from services.web.errors import install_error_handlers
from services.web.health import health_router
from services.web.observability import instrument
from services.web.rate_limit import install_rate_limit
from services.web.serve import worker_factory
from services.web.startup import startup_objects_frozen
from services.web.tracing import FASTAPI_TELEMETRY, setup_tracing
from shared.api_keys import KeyStore
from shared.settings import Settings
from shared.touchpoints import load_catalog

DESCRIPTION = """
Receives customer touchpoint events from CRM systems, apps and marketing tools, validates them
against the touchpoint catalog, and streams them onto Kafka (`touchpoints.v1`), keyed by
customer so that each customer's events stay in order. A 202 means Kafka has the event.
"""


def create_app(
    settings: Settings,
    publisher: Publisher | None = None,
    key_store: KeyStore | None = None,
    span_exporter=None,
) -> FastAPI:
    registry = CollectorRegistry()
    runtime = Runtime(
        settings=settings,
        catalog=load_catalog(settings.touchpoint_catalog_file),
        publisher=publisher or build_publisher(settings),
        metrics=IngestionMetrics(registry),
        registry=registry,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_in_background(runtime.publisher,
                              [settings.topic_touchpoints, settings.topic_dead_letter])
        with startup_objects_frozen():
            yield
        runtime.publisher.close()

    app = FastAPI(
        title="Touchpoint ingestion", version="1.0.0", description=DESCRIPTION,
        lifespan=lifespan, telemetry=FASTAPI_TELEMETRY,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    install_auth(app, settings, key_store)
    install_rate_limit(app, settings, registry)
    instrument(app, registry, "ingestion")
    app.include_router(health_router("ingestion", {"kafka": runtime.publisher.check}))
    app.include_router(api.router, tags=["events"])
    api.document_event_schema(app)
    setup_tracing(app, "ingestion", settings, span_exporter)
    app.include_router(webhook_router(settings))
    return app


# The app of one worker process when `INGESTION_WORKERS` is more than 1.
worker_app = worker_factory(create_app)
