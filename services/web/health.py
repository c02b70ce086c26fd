"""`GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

ReadinessCheck = Callable[[], None]  # raises when the dependency is not ready


def health_router(service: str, checks: dict[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    def healthz() -> dict:
        return {"status": "ok", "service": service}

    @router.get("/readyz", summary="Readiness: every dependency answers", responses={
        503: {"description": "A dependency does not answer; `checks` says which and why.",
              "headers": {"Retry-After": {"schema": {"type": "integer"}}}}})
    def readyz() -> JSONResponse:
        results, ready = {}, True
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; say which and why
                results[name] = f"unavailable: {exc}"
                ready = False
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "service": service, "checks": results},
            status_code=200 if ready else 503,
            headers=None if ready else {"Retry-After": "5"},
        )

    return router
