"""Optional OpenTelemetry tracing, switched on by `TRACING_ENABLED=true`.

Spans go to the OTLP/HTTP endpoint in `OTEL_EXPORTER_OTLP_ENDPOINT` (the standard OpenTelemetry
variables apply). The trace context travels to Kafka consumers in a `traceparent` header.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from shared.settings import Settings

log = logging.getLogger(__name__)

# FastAPI's built-in OpenTelemetry hook asks the global providers on every request whether it
# should trace (about 4% of a recommendation's CPU); tracing here is `setup_tracing`'s job.
FASTAPI_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


def setup_tracing(app: FastAPI, service: str, settings: Settings, exporter=None) -> bool:
    """Instruments `app` when tracing is enabled; returns whether it is."""
    if not settings.tracing_enabled:
        return False
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        log.warning("TRACING_ENABLED is set but OpenTelemetry is not installed: "
                    "pip install 'touchpoint[tracing]'")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": f"touchpoint-{service}"}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider,
                                       excluded_urls="healthz,readyz,metrics")
    app.state.tracer_provider = provider
    return True


def trace_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers (empty when tracing is off)."""
    try:
        from opentelemetry.propagate import inject
    except ImportError:
        return []
    carrier: dict[str, str] = {}
    inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]
