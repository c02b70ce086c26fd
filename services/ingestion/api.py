"""`/v1/events` and `/v1/touchpoints`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.ingestion.deps import Runtime, get_runtime
from services.ingestion.intake import BatchTooLargeError, take_events
from services.web.auth import require_scope
from services.web.errors import error_response
from services.web.tracing import trace_headers
from shared.errors import InvalidEventError, NotFoundError
from shared.events import TouchpointEvent, ValidationRules
from shared.stream import event_record
from shared.touchpoints import Phase, Touchpoint

log = logging.getLogger(__name__)
router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

SINGLE_EXAMPLE = {
    "event_id": "evt-0001",
    "customer_id": "c-1001",
    "occurred_at": "2026-11-20T09:30:00+07:00",
    "touchpoint": "social.ad_click",
    "context": {"campaign": "flash-sale-11", "need": "saving money", "placement": "facebook-feed"},
}
BATCH_EXAMPLE = {"events": [
    SINGLE_EXAMPLE,
    {"anonymous_id": "anon-77", "occurred_at": "2026-11-20T09:31:00+07:00",
     "touchpoint": "web.product_view", "properties": {"sku": "AO-123"}},
    {"customer_id": "c-1001", "occurred_at": "2026-11-20T10:05:00+07:00",
     "touchpoint": "web.purchase", "value": 450000, "currency": "VND"},
]}


class Accepted(BaseModel):
    accepted: int = Field(description="Events acknowledged by the broker.")
    rejected: int = Field(0, description="Invalid events in a batch (see errors).")
    event_ids: list[str] = Field(description="Ids of the accepted events, in request order.")
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="Per invalid event: its index and field errors."
    )

    model_config = {"json_schema_extra": {"examples": [
        {"accepted": 2, "rejected": 1, "event_ids": ["evt-0001", "4c1f0a"],
         "errors": [{"index": 2, "fields": [
             {"field": "events[2].currency", "message": "is required when value is set",
              "type": "value_error"}]}]}]}}


class ErrorBody(BaseModel):
    error: dict[str, Any]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON."},
    413: {"model": ErrorBody, "description": "Body or batch too large."},
    415: {"model": ErrorBody, "description": "Content type is not application/json."},
    422: {"model": ErrorBody, "description": "Invalid event(s); fields named."},
    503: {"model": ErrorBody, "description": "Broker unavailable; retry after Retry-After."},
}


async def read_json_body(request: Request, max_bytes: int) -> Any | JSONResponse:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        return error_response(415, "unsupported_media_type",
                              f"content-type must be application/json, got {content_type!r}",
                              [{"field": "content-type", "message": "must be application/json",
                                "type": "media_type"}])
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        message = f"body is {declared} bytes; the limit is {max_bytes}"
        return error_response(413, "payload_too_large", message,
                              [{"field": "(body)", "message": message, "type": "too_large"}])
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            message = f"body exceeds the limit of {max_bytes} bytes"
            return error_response(413, "payload_too_large", message,
                                  [{"field": "(body)", "message": message, "type": "too_large"}])
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        return error_response(400, "malformed_json", f"body is not valid JSON: {exc}",
                              [{"field": "(body)", "message": str(exc), "type": "json_invalid"}])


def document_event_schema(app: FastAPI) -> None:
    """Puts `TouchpointEvent` (and the models it uses) into the OpenAPI components.

    The request body of `/v1/events` is read by hand (size limit before parsing), so FastAPI
    does not register the event model itself, and the body schema's `$ref`s would dangle.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "TouchpointEvent" not in components:
            event = TouchpointEvent.model_json_schema(
                ref_template="#/components/schemas/{model}", mode="validation")
            for name, definition in event.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components["TouchpointEvent"] = event
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


@router.post(
    "/v1/events", status_code=202, response_model=Accepted, responses=ERROR_RESPONSES,
    dependencies=[Depends(require_scope("events:write"))],
    summary="Send one touchpoint event or a batch",
    description=(
        "Accepts one event, or `{\"events\": [...]}` with at most 1,000 events (1 MiB). Answers "
        "202 only after Kafka acknowledged every accepted event. In a batch, valid events are "
        "accepted and each invalid one is reported by index. Sending the same `event_id` again "
        "is safe: it is counted once."
    ),
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [{"$ref": "#/components/schemas/TouchpointEvent"},
                             {"type": "object", "required": ["events"], "properties": {
                                 "events": {"type": "array", "maxItems": 1000, "items": {
                                     "$ref": "#/components/schemas/TouchpointEvent"}}}}]},
        "examples": {"single": {"value": SINGLE_EXAMPLE}, "batch": {"value": BATCH_EXAMPLE}},
    }}}},
)
async def post_events(request: Request, runtime: RuntimeDep) -> Any:
    body = await read_json_body(request, runtime.settings.max_body_bytes)
    if isinstance(body, JSONResponse):
        return body
    rules = ValidationRules(runtime.catalog, datetime.now(UTC), runtime.settings.max_future_skew_s)
    try:
        result = take_events(body, rules, runtime.settings.max_batch_events)
    except BatchTooLargeError as exc:
        return error_response(413, "batch_too_large", str(exc),
                              [{"field": "events", "message": str(exc), "type": "too_long"}])
    except InvalidEventError:
        runtime.metrics.events_rejected.inc()
        raise
    runtime.metrics.events_rejected.inc(len(result.rejected))
    if not result.accepted:
        fields = [f for item in result.rejected for f in item["fields"]]
        return error_response(422, "invalid_event", "no valid event in the batch", fields) \
            if not result.is_batch else JSONResponse(
                {"error": {"code": "invalid_events", "message": "no valid event in the batch",
                           "fields": fields, "rejected": result.rejected}}, status_code=422)
    request_id = request.scope.get("state", {}).get("request_id")
    tracing = trace_headers() if runtime.settings.tracing_enabled else []
    records = [event_record(event, request_id, tracing) for event in result.accepted]
    await run_in_threadpool(runtime.publisher.publish, runtime.settings.topic_touchpoints, records)
    runtime.metrics.events_accepted.inc(len(records))
    return Accepted(accepted=len(records), rejected=len(result.rejected),
                    event_ids=[e.event_id for e in result.accepted], errors=result.rejected)


@router.get("/v1/touchpoints", response_model=list[Touchpoint], summary="The touchpoint catalog")
def list_touchpoints(
    runtime: RuntimeDep,
    phase: Annotated[Phase | None, Query(description="Only this phase.")] = None,
    channel: Annotated[str | None, Query(max_length=40, description="Only this channel.")] = None,
) -> list[Touchpoint]:
    return [t for t in runtime.catalog
            if (phase is None or t.phase == phase) and (channel is None or t.channel == channel)]


@router.get("/v1/touchpoints/{touchpoint_id}", response_model=Touchpoint,
            responses={404: {"model": ErrorBody}}, summary="One catalog touchpoint")
def get_touchpoint(touchpoint_id: str, runtime: RuntimeDep) -> Touchpoint:
    entry = runtime.catalog.get(touchpoint_id)
    if entry is None:
        matches = runtime.catalog.close_matches(touchpoint_id)
        hint = f"; did you mean {', '.join(matches)}?" if matches else ""
        raise NotFoundError(f"unknown touchpoint {touchpoint_id!r}{hint}")
    return entry


