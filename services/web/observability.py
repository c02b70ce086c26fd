"""Request ids and Prometheus HTTP metrics as plain ASGI middleware (cheap on the hot path)."""

from __future__ import annotations

import os
import re
import time
import uuid

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logging import request_id_var

REQUEST_ID_HEADER = b"x-request-id"
# prometheus_client's folder for the metric files of several worker processes.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class RequestContextMiddleware:
    """Takes or makes a request id, exposes it to logs and responses, and times the request."""

    def __init__(self, app: ASGIApp, latency: Histogram):
        self.app = app
        self.latency = latency

    @staticmethod
    def _route_template(scope: Scope) -> str:
        # The router records the matched route in the scope; its path is the template.
        return getattr(scope.get("route"), "path", "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == REQUEST_ID_HEADER:
                candidate = value.decode("latin-1")
                request_id = candidate if _SAFE_REQUEST_ID.match(candidate) else None
                break
        request_id = request_id or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            route = self._route_template(scope)
            self.latency.labels(scope.get("method", ""), route, str(status_holder["status"])) \
                .observe(time.perf_counter() - started)


class _RegistryAndFiles:
    """A collector: one registry's metrics followed by those summed from a folder's files."""

    def __init__(self, registry: CollectorRegistry, folder: str):
        self.registry = registry
        self.files = MultiProcessCollector(None, path=folder)

    def collect(self):
        yield from self.registry.collect()
        yield from self.files.collect()


def exposed_registry(registry: CollectorRegistry,
                     children_dir: str | None = None) -> CollectorRegistry:
    """The app's registry; with several worker processes, the sum of their metric files; with
    child processes writing to `children_dir`, the app's registry plus their sums."""
    folder = os.environ.get(MULTIPROCESS_ENV)
    combined = CollectorRegistry(auto_describe=False)
    if folder:
        MultiProcessCollector(combined, path=folder)
    elif children_dir:
        combined.register(_RegistryAndFiles(registry, children_dir))
    else:
        return registry
    return combined


def instrument(app: FastAPI, registry: CollectorRegistry, service: str) -> None:
    """Adds the request-context middleware and `GET /metrics` serving `registry`."""
    latency = Histogram(
        "touchpoint_http_request_duration_seconds", "HTTP request latency by route and status.",
        ["method", "route", "status"], registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    app.add_middleware(RequestContextMiddleware, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        children_dir = getattr(app.state, "child_metrics_dir", None)
        return Response(generate_latest(exposed_registry(registry, children_dir)),
                        media_type=CONTENT_TYPE_LATEST)
