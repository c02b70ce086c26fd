"""An empty FastAPI endpoint served exactly like the services: the HTTP ceiling of the bench.

`python -m services.bench.empty_app` serves it on INGESTION_PORT through the same `serve()`
(uvicorn settings, logging) as `python -m services.ingestion`.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.web.serve import serve
from services.web.tracing import FASTAPI_TELEMETRY
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="Empty endpoint (benchmark ceiling)", telemetry=FASTAPI_TELEMETRY)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/empty")
    async def empty() -> dict[str, bool]:
        return {"ok": True}

    return app


if __name__ == "__main__":
    serve("services.bench.empty_app:create_app", port_setting="ingestion_port")
