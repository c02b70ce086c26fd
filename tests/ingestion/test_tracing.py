"""Optional tracing: a request becomes a span whose context travels in the Kafka record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import create_app
from services.streaming.publisher import InMemoryPublisher
from shared.settings import Settings

pytest.importorskip("opentelemetry.sdk", reason="the tracing extra is not installed")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

EVENT = {"customer_id": "c-1", "occurred_at": datetime.now(UTC).isoformat(),
         "touchpoint": "web.visit"}


def test_tracing_off_by_default_adds_no_header():
    publisher = InMemoryPublisher()
    client = TestClient(create_app(Settings(auth_disabled=True), publisher))
    assert client.post("/v1/events", json=EVENT).status_code == 202
    [record] = next(iter(publisher.topics.values()))
    assert "traceparent" not in dict(record.headers)


def test_request_span_context_travels_in_traceparent_header():
    exporter, publisher = InMemorySpanExporter(), InMemoryPublisher()
    app = create_app(Settings(tracing_enabled=True, auth_disabled=True), publisher,
                     span_exporter=exporter)
    client = TestClient(app)
    assert client.post("/v1/events", json=EVENT).status_code == 202
    [record] = next(iter(publisher.topics.values()))
    traceparent = dict(record.headers)["traceparent"].decode()
    spans = exporter.get_finished_spans()
    server_spans = [s for s in spans if s.name.startswith("POST /v1/events")]
    assert server_spans, [s.name for s in spans]
    trace_id = f"{server_spans[0].context.trace_id:032x}"
    assert traceparent.split("-")[1] == trace_id
