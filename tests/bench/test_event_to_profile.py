"""The event-to-profile scenario against two small HTTP servers standing in for ingestion and
the profile API: a probe's polling must not count as its POST's latency."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from services.bench.scenarios import Context, Plan, event_to_profile
from services.bench.system import Endpoint

VISIBLE_AFTER_S = 1.0


class Timeline:
    """When each customer's first event was accepted."""

    def __init__(self) -> None:
        self.accepted_at: dict[str, float] = {}
        self.lock = threading.Lock()


def handler_for(timeline: Timeline) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            events = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["events"]
            with timeline.lock:
                for event in events:
                    timeline.accepted_at.setdefault(event["customer_id"], time.perf_counter())
            self.answer(202, {"accepted": len(events)})

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self.answer(200, {"status": "ok"})
                return
            customer = self.path.rsplit("/", 1)[-1]
            with timeline.lock:
                accepted = timeline.accepted_at.get(customer)
            visible = accepted is not None and time.perf_counter() - accepted >= VISIBLE_AFTER_S
            self.answer(200 if visible else 404, {"customer_id": customer})

    return Handler


@pytest.fixture
def services() -> Iterator[dict[str, Endpoint]]:
    timeline = Timeline()
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler_for(timeline)) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {name: Endpoint("127.0.0.1", server.server_address[1])
               for name, server in zip(("ingestion", "profile"), servers, strict=True)}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_probe_polling_is_not_counted_as_post_latency(services):
    plan = Plan(duration_s=1.0, e2p_events_per_s=200, e2p_batch=20, e2p_probe_every=5,
                warmup_s=0)
    system = SimpleNamespace(endpoints=services, auth_headers={"Authorization": "Bearer k"})
    outcome = event_to_profile(Context(system, plan, datetime.now(UTC), {}))  # type: ignore[arg-type]

    probes, posts = outcome.data["probes"], outcome.data["ingest"]
    assert probes["count"] == 4 and outcome.data["not_visible"] == 0
    # Every probe waited for its profile to appear...
    assert probes["p50_ms"] >= VISIBLE_AFTER_S * 1000
    # ...while every POST was answered at once, the probes' own requests included.
    assert posts["completed"] == 20 and posts["errors"] == 0
    assert posts["latency"]["max_ms"] < VISIBLE_AFTER_S * 1000 / 2
    assert "POST p99" in outcome.result
