"""One exception handler per app: our errors and validation errors to precise HTTP answers.

Every error body reads `{"error": {"code", "message", "fields": [{"field", "message", "type"}]}}`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import (
    AuthenticationError,
    ConflictError,
    InvalidEventError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    TouchpointError,
    UnavailableError,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[TouchpointError], int, str]] = [
    (InvalidEventError, 422, "invalid_event"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (AuthenticationError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "forbidden"),
    (RateLimitedError, 429, "rate_limited"),
    (UnavailableError, 503, "unavailable"),
]


def error_body(code: str, message: str, fields: list[dict[str, Any]] | None = None) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def error_response(
    status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, fields), status_code=status, headers=headers)


def validation_fields(exc: RequestValidationError) -> list[dict[str, str]]:
    fields = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        fields.append({
            "field": ".".join(loc) or "(body)",
            "message": str(error.get("msg", "")).removeprefix("Value error, "),
            "type": str(error.get("type", "")),
        })
    return fields


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TouchpointError)
    async def _ours(request: Request, exc: TouchpointError) -> JSONResponse:
        for error_type, status, code in STATUS_BY_ERROR:
            if isinstance(exc, error_type):
                headers = None
                if isinstance(exc, UnavailableError | RateLimitedError):
                    headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
                if isinstance(exc, AuthenticationError):
                    headers = {"WWW-Authenticate": "Bearer"}
                fields = exc.errors if isinstance(exc, InvalidEventError) else None
                return error_response(status, code, str(exc), fields, headers)
        log.exception("unmapped error", exc_info=exc)
        return error_response(500, "internal", "internal error")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        undecodable = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if undecodable:  # not JSON at all: no field to name but the body itself
            at = [str(part) for part in undecodable[0].get("loc", ()) if part != "body"]
            message = f"body is not valid JSON (at character {at[0]})" if at else \
                "body is not valid JSON"
            return error_response(400, "malformed_json", message,
                                  [{"field": "(body)", "message": message, "type": "json_invalid"}])
        fields = validation_fields(exc)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(422, "invalid_request", summary, fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to bodies json cannot decode at all (invalid UTF-8, nesting
            # deeper than the parser's recursion limit)
            message = "body is not valid JSON (invalid UTF-8 or nested too deeply)"
            return error_response(400, "malformed_json", message,
                                  [{"field": "(body)", "message": message, "type": "json_invalid"}])
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error")
        fields = [{"field": "(body)", "message": str(exc.detail), "type": "too_large"}] \
            if exc.status_code == 413 else None
        return error_response(exc.status_code, code, str(exc.detail), fields, headers=exc.headers)
